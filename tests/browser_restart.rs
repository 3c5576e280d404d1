//! End to end with a real headless Chromium but without watchexec: the test holds
//! the listening socket itself (as watchexec does), runs the already-built demo on
//! it, and kills, or stops and starts again, the demo by itself. Three tests, each
//! with its own Chromium and two tabs:
//!
//! 1. on the home page: after SIGKILL (no goodbye) the tabs show "down" and the
//!    badge, never an error page, and reload exactly once onto the next server; then
//!    after SIGINT and a second with no server at all (requests wait in the
//!    backlog), the same, and exactly one more reload;
//! 2. on a long static page that opts out of morphing (so the tabs reload rather
//!    than morph the new page in): the scroll position survives the reload, restored by
//!    the client script (the page turns the browser's own restoration off, and a
//!    control run checks that without the client's saved position the page comes
//!    back at the top);
//! 3. on a static page whose file did not change: a restart reloads it exactly once
//!    onto the new server (the browser revalidates the page; a `304 Not Modified`
//!    must not bring back the copy that names the old server).
//!
//! 4. on the demo's feed page, long enough to scroll: a restart morphs the next
//!    server's page into every tab, with no navigation: the half-typed message,
//!    the focus and the selection in it, and the scroll position stay.
//!
//! Needs chromium and chromedriver on PATH: without them the tests are ignored (the
//! build script's cfg), except under CI (`CI=true`), where they fail. Run them with
//! `cargo test --test browser_restart -- --nocapture` to see the timings.

#[path = "demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use dev_support::chromium::{Browser, Options, TabState};
use dev_support::http::first_answer;
use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use dev_support::temp::temp_dir;
use dev_support::wait::until;
use nix::sys::signal::Signal;
use serde::Deserialize;
use serde_json::json;

const TABS: usize = 2;
/// Bound on anything that takes milliseconds when it works (a tab reloading, a
/// server answering, a process exiting).
const WAIT: Duration = Duration::from_secs(10);
/// How long the tabs go with no server at all in the graceful restart.
const GAP: Duration = Duration::from_secs(1);
/// How long the tabs are watched after a SIGKILL, before the next server starts.
const AFTER_KILL: Duration = Duration::from_millis(300);
/// How long a settled tab is watched for a second reload.
const SETTLE: Duration = Duration::from_millis(800);
/// Where the tabs are scrolled to before a restart, one position per tab.
const SCROLL: [i64; TABS] = [3000, 1500];
const SCROLL_KEY: &str = "axum-autoreload:scroll";
const LONG_PAGE: &str = "/static/long.html";
const LONG_TITLE: &str = "a long page";
const FEED: &str = "/posts";
const FEED_TITLE: &str = "Live feed";
/// Posts made before the restart, so that the feed page scrolls.
const POSTS: usize = 40;
/// What each tab has typed, not sent, when the server restarts; the part of it
/// selected; how far the tab is scrolled.
const DRAFT: &str = "half-typed, not sent";
const SELECTION: (i64, i64) = (5, 10);
const FEED_SCROLL: i64 = 600;

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn tabs_reload_once_after_sigkill_and_after_a_gap() {
    with_run("/", async |run| {
        run.down_and_back(Signal::SIGKILL, WAIT, AFTER_KILL, 1)
            .await;
        run.down_and_back(Signal::SIGINT, GAP, GAP, 2).await;
    })
    .await;
}

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn scroll_position_survives_a_restart() {
    with_run(LONG_PAGE, async |run| run.scroll_kept().await).await;
}

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn unchanged_static_page_reloads_once_after_a_restart() {
    with_run(LONG_PAGE, async |run| {
        let when = "after SIGINT with long.html unchanged";
        run.restart(when, 1).await;
        run.settle(when, 1).await;
    })
    .await;
}

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn feed_draft_focus_and_scroll_survive_a_restart() {
    with_run(FEED, async |run| run.feed_kept().await).await;
}

/// Starts Chromium and the demo (or skips), opens the tabs on `path`, checks that
/// they are live on the first server, and runs `scenario`.
async fn with_run(path: &str, scenario: impl AsyncFnOnce(&mut Run<'_>)) {
    let browser = Browser::launch(Options::default()).await;
    let work = temp_dir("axum-autoreload-restart-e2e-");
    let static_dir = work.path().join("static");
    std::fs::create_dir(&static_dir).expect("creating the static directory");
    let long_page = static_dir.join("long.html");
    std::fs::write(&long_page, long_page_html()).expect("writing long.html");
    // The feed needs the demo's own static files (htmx); the others the long page.
    let static_dir = match path {
        FEED => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/static")),
        _ => static_dir,
    };
    let args = vec![
        format!("--static-dir={}", static_dir.display()),
        format!("--db={}", work.path().join("posts.sqlite3").display()),
        "--drain-deadline=1000".to_owned(),
    ];
    let started = Instant::now();
    browser
        .run(async |browser| {
            let mut run = Run {
                browser,
                server: None,
                socket: PassedSocket::new(),
                args,
                long_page,
                title: String::new(),
                instance: String::new(),
            };
            run.serve();
            let (instance, home_title) = home(run.socket.addr).await;
            run.instance = instance;
            run.title = match path {
                LONG_PAGE => LONG_TITLE.to_owned(),
                FEED => FEED_TITLE.to_owned(),
                _ => home_title,
            };
            let url = format!("http://{}{path}", run.socket.addr);
            let tabs = run.browser.open_live(&url, TABS, WAIT).await;
            for (i, tab) in tabs.iter().enumerate() {
                run.expect_on(i, tab, "at the start", 0);
            }
            scenario(&mut run).await;
        })
        .await;
    let took = started.elapsed().as_millis();
    eprintln!("passed in {took} ms (after Chromium started)");
}

/// An HTML page far taller than the window, that turns off the browser's own
/// scroll restoration so that only the client script can bring the position back,
/// and opts out of morphing (a morph keeps the scroll position by itself): these
/// scenarios pin the full reload.
fn long_page_html() -> String {
    let paragraphs: String = (0..300)
        .map(|i| format!("<p>Paragraph {i}: long enough to make the page scroll.</p>\n"))
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{LONG_TITLE}</title>\
         <meta name=\"axum-autoreload\" content=\"reload\">\
         <script>history.scrollRestoration = \"manual\";</script></head>\n<body>\n\
         {paragraphs}</body></html>\n"
    )
}

/// `GET /` on the running server: its instance id (from the injected script tag)
/// and the page's title.
async fn home(addr: SocketAddr) -> (String, String) {
    let response = first_answer(addr, "/", WAIT, || {}).await;
    let page = response.text();
    assert_eq!(response.status, 200, "GET /: {page}");
    let between = |start: &str, end: &str| {
        let (_, rest) =
            (page.split_once(start)).unwrap_or_else(|| panic!("GET / has no {start:?}: {page}"));
        let (found, _) = (rest.split_once(end))
            .unwrap_or_else(|| panic!("GET / has no {end:?} after {start:?}: {page}"));
        found.to_owned()
    };
    (
        between("data-instance=\"", "\""),
        between("<title>", "</title>"),
    )
}

/// A tab's reload counter after `reloads` reloads (unset before the first).
fn counter(reloads: u32) -> Option<String> {
    (reloads > 0).then(|| reloads.to_string())
}

/// What a feed tab holds that a reload would lose.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedState {
    /// The mark left on the page's window: gone after a navigation.
    marked: bool,
    draft: String,
    /// The id of the focused element.
    focused: Option<String>,
    selection: (i64, i64),
    scroll_y: f64,
}

/// A demo server on a passed socket, and the tabs of a Chromium on it.
struct Run<'b> {
    browser: &'b mut Browser,
    /// The demo server, while one runs.
    server: Option<Proc>,
    socket: PassedSocket,
    args: Vec<String>,
    /// The long page's file.
    long_page: PathBuf,
    /// The title of the page the tabs are on.
    title: String,
    /// The instance id of the running (or last) server.
    instance: String,
}

impl Run<'_> {
    /// Scenario 1: stops the server with `signal` and starts the next one `gap`
    /// after it exited; every tab is down (with the badge) within `down_within`.
    async fn down_and_back(
        &mut self,
        signal: Signal,
        down_within: Duration,
        gap: Duration,
        reloads: u32,
    ) {
        self.stop(signal);
        let gone = Instant::now();
        let (title, before) = (self.title.clone(), counter(reloads - 1));
        let mut down_after = [None; TABS];
        let what = format!("every tab down until {} ms after {signal}", gap.as_millis());
        let limit = gap.max(down_within) + WAIT;
        (self.browser)
            .wait_all(&what, limit, |i, tab| {
                let ms = gone.elapsed().as_millis();
                let when = format!("{ms} ms after {signal}");
                assert_eq!(
                    tab.title, title,
                    "tab {i} {when} shows another page: {tab:?}"
                );
                assert_eq!(tab.reloads, before, "tab {i} {when} reloaded: {tab:?}");
                if tab.is_down() {
                    down_after[i].get_or_insert(ms);
                } else {
                    assert!(
                        down_after[i].is_none(),
                        "tab {i} {when} stopped being down with no server: {tab:?}"
                    );
                    assert!(
                        gone.elapsed() < down_within,
                        "tab {i} is not down with the badge {when}: {tab:?}"
                    );
                }
                tab.is_down() && gone.elapsed() >= gap
            })
            .await;
        eprintln!("{signal}: tabs first seen down with the badge after {down_after:?} ms");
        let when = format!("after {signal} and {} ms with no server", gap.as_millis());
        self.start_and_expect_one_reload(&when, reloads).await;
        self.settle(&when, reloads).await;
    }

    /// Scenario 2. The page's file is touched before each restart, as an edit
    /// would, so that the reload fetches it anew (scenario 3 leaves it unchanged).
    async fn scroll_kept(&mut self) {
        self.scroll_to(SCROLL).await;
        let stopped = Instant::now();
        self.touch_long_page(1);
        self.restart("after SIGINT", 1).await;
        // The position is restored on the load event, which comes before the tab
        // goes live; wait a little for it anyway.
        let what = format!("the tabs to be back at {SCROLL:?} after the restart");
        let limit = Duration::from_secs(2);
        (self.browser)
            .wait_all(&what, limit, |i, tab| {
                (tab.scroll_y - SCROLL[i] as f64).abs() <= 3.0
            })
            .await;
        let took = stopped.elapsed().as_millis();
        eprintln!("scroll: tabs back at {SCROLL:?} {took} ms after SIGINT");

        // Control: the client does not get to save the position this time.
        const DROP_SAVED_SCROLL: &str = r#"
            var dropped = arguments[0];
            var setItem = Storage.prototype.setItem;
            Storage.prototype.setItem = function (key, value) {
                if (key === dropped) return;
                return setItem.call(this, key, value);
            };
        "#;
        for i in 0..TABS {
            let args = vec![json!(SCROLL_KEY)];
            self.browser.exec(i, DROP_SAVED_SCROLL, args).await;
        }
        self.scroll_to(SCROLL).await;
        self.touch_long_page(2);
        self.restart("after SIGINT", 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tabs = self.browser.wait_all("every tab read", WAIT, |_, _| true);
        let scrolls: Vec<f64> = tabs.await.iter().map(|tab| tab.scroll_y).collect();
        assert!(
            scrolls.iter().all(|&y| y == 0.0),
            "control: without the client's saved position the reloaded tabs should be at \
             the top, they are at {scrolls:?}: the browser restores the scroll by itself, \
             so the check above proves nothing"
        );
        eprintln!("scroll control: without the saved position the tabs come back at {scrolls:?}");
    }

    /// Scenario 4.
    async fn feed_kept(&mut self) {
        const POST: &str = r#"
            var done = arguments[arguments.length - 1];
            var posts = [];
            for (var i = 0; i < arguments[0]; i++) {
                var body = new URLSearchParams({ username: "e2e", message: "post " + i + ": " +
                    "long enough to take a line or two of the feed page, so that it scrolls." });
                posts.push(fetch("/posts", { method: "POST", body: body, headers: { "HX-Request": "true" } }));
            }
            Promise.all(posts).then(function () { done(true); }, function (e) { done(String(e)); });
        "#;
        let posted = self
            .browser
            .client
            .execute_async(POST, vec![json!(POSTS)])
            .await;
        assert_eq!(posted.expect("posting"), json!(true));
        const COUNT: &str = "return document.querySelectorAll('#posts li.post').length;";
        for i in 0..TABS {
            let what = format!("tab {i} to show the {POSTS} posts");
            until(&what, WAIT, || async {
                let shown = self.browser.exec(i, COUNT, vec![]).await;
                (shown.as_u64() == Some(POSTS as u64)).then_some(())
            })
            .await;
        }
        for i in 0..TABS {
            self.browser.type_into(i, "message", DRAFT, SELECTION).await;
        }
        self.scroll_to([FEED_SCROLL; TABS]).await;
        let before = self.feed_state().await;
        let typed = FeedState {
            marked: true,
            draft: DRAFT.to_owned(),
            focused: Some("message".to_owned()),
            selection: SELECTION,
            scroll_y: FEED_SCROLL as f64,
        };
        assert_eq!(before, [typed.clone(), typed.clone()], "before the restart");
        self.restart("after SIGINT on the feed page", 1).await;
        let after = self.feed_state().await;
        assert_eq!(
            after,
            [typed.clone(), typed],
            "draft, focus, selection, scroll and the page itself (no navigation) kept"
        );
    }

    /// Every tab's [`FeedState`].
    async fn feed_state(&self) -> Vec<FeedState> {
        const READ: &str = r#"
            var field = document.getElementById("message");
            var active = document.activeElement;
            return {
                marked: window.e2eMark === true,
                draft: field.value,
                focused: active && active.id ? active.id : null,
                selection: [field.selectionStart, field.selectionEnd],
                scrollY: window.scrollY,
            };
        "#;
        let mut states = Vec::new();
        for i in 0..TABS {
            let state = self.browser.exec(i, READ, vec![]).await;
            states.push(serde_json::from_value(state).expect("a feed state"));
        }
        states
    }

    /// Moves the long page's modification time `minutes` forward, so that a
    /// revalidation of it gets the whole page.
    fn touch_long_page(&mut self, minutes: u64) {
        let modified = SystemTime::now() + Duration::from_secs(60 * minutes);
        std::fs::File::options()
            .write(true)
            .open(&self.long_page)
            .and_then(|file| file.set_modified(modified))
            .expect("moving long.html's modification time forward");
    }

    /// Scrolls each tab to its position and checks it got there.
    async fn scroll_to(&mut self, positions: [i64; TABS]) {
        for (i, y) in positions.into_iter().enumerate() {
            let script = "window.scrollTo(0, arguments[0]); return window.scrollY;";
            let at = self.browser.exec(i, script, vec![json!(y)]).await;
            let could = format!("tab {i} could not scroll to {y} (is the page long enough?)");
            assert_eq!(at.as_f64(), Some(y as f64), "{could}");
        }
    }

    /// Starts the next server on the socket.
    fn serve(&mut self) {
        assert!(self.server.is_none(), "a server is still running");
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.server = Some(demo::spawn_on(&self.socket, &args));
    }

    /// Sends `signal` to the server and waits for it to exit (with success, but
    /// after SIGKILL).
    fn stop(&mut self, signal: Signal) {
        let stopped = Instant::now();
        let mut server = self.server.take().expect("a server is running");
        server.signal(signal);
        let status = server.wait_exit(WAIT);
        let status =
            status.unwrap_or_else(|| panic!("the server did not exit within {WAIT:?} of {signal}"));
        assert!(
            signal == Signal::SIGKILL || status.success(),
            "the server exited with {status} on {signal}"
        );
        let took = stopped.elapsed().as_millis();
        eprintln!("{signal}: the server exited after {took} ms");
    }

    /// SIGINT, and the next server at once; every tab reloads once onto it.
    async fn restart(&mut self, when: &str, reloads: u32) {
        self.stop(Signal::SIGINT);
        self.start_and_expect_one_reload(when, reloads).await;
    }

    /// Starts the next server and waits for every tab to reload onto it, its
    /// reload counter going from one less to `reloads`, its title the same all
    /// along.
    async fn start_and_expect_one_reload(&mut self, when: &str, reloads: u32) {
        let old = self.instance.clone();
        let title = self.title.clone();
        let (before, after) = (counter(reloads - 1), counter(reloads));
        let spawned = Instant::now();
        self.serve();
        let mut first = None;
        let what = format!("every tab to reload {when}");
        let states = self
            .browser
            .wait_all(&what, WAIT, |i, tab| {
                assert!(
                    tab.title == title || tab.title.is_empty(),
                    "tab {i} {when} shows another page (an error page?): {tab:?}"
                );
                assert!(
                    tab.reloads == before || tab.reloads == after,
                    "tab {i} {when} should reload exactly once, its reload count going \
                     from {before:?} to {reloads}: {tab:?}"
                );
                let done = tab.is_live()
                    && tab.reloads == after
                    && tab.instance.as_deref() != Some(old.as_str());
                if done {
                    first.get_or_insert(spawned.elapsed());
                }
                done
            })
            .await;
        let all = spawned.elapsed();
        eprintln!(
            "{when}: every tab reloaded {} ms after the next server was spawned \
             (the first after {} ms)",
            all.as_millis(),
            first.unwrap_or(all).as_millis()
        );
        let (new, _) = home(self.socket.addr).await;
        assert_ne!(new, old, "the next server has the old instance id");
        self.instance = new;
        for (i, tab) in states.iter().enumerate() {
            self.expect_on(i, tab, when, reloads);
        }
    }

    /// Every tab stays as it is for [`SETTLE`]: no second reload on its way.
    async fn settle(&mut self, when: &str, reloads: u32) {
        let when = format!("{when}, {} ms later", SETTLE.as_millis());
        tokio::time::sleep(SETTLE).await;
        let what = format!("every tab to be live {when}");
        let states = self
            .browser
            .wait_all(&what, WAIT, |_, tab| tab.is_live())
            .await;
        for (i, tab) in states.iter().enumerate() {
            self.expect_on(i, tab, &when, reloads);
        }
    }

    /// Tab `i` is live on the current server, shows the page's title and no badge,
    /// and has reloaded `reloads` times.
    fn expect_on(&self, i: usize, tab: &TabState, when: &str, reloads: u32) {
        let (instance, reloads) = (Some(self.instance.as_str()), counter(reloads));
        tab.expect_on((i, when), &self.title, instance, reloads.as_deref());
    }
}
