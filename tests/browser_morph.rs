//! Morph or reload, in a real headless Chromium: apps served by
//! `axum_autoreload::serve` in this process on a socket the test holds, swapped
//! for the next one on the same socket as the runner swaps them, with two tabs
//! open on them.
//!
//! 1. The next app's page has the same scripts: the tabs morph it in (no
//!    navigation), from one fetch of the page that their shared worker made for
//!    both; then one whose head script changed: they reload instead.
//! 2. A page whose WebSocket the restart closed reloads (a morph would leave it
//!    dead); the same page that closed its socket itself morphs.
//! 3. A shared worker that fails to start: each tab opens its own stream (on the
//!    worker's error, or when the worker does not answer), and still hears the
//!    stream's events.
//! 4. The app's own `EventSource` is back on the next app within 500 ms of its
//!    stream's end (the layer's `retry: 250`; the browser's default is 3 s).
//! 5. A hidden tab waits until it is shown to update, then updates once.
//!
//! Needs chromium and chromedriver on PATH: without them the tests are ignored (the
//! build script's cfg), except under CI (`CI=true`), where they fail.
//! `-- --nocapture` prints the timings.

#[path = "demo/support.rs"]
mod demo;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocketUpgrade};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use axum_autoreload::{AutoReload, ShutdownSignal};
use demo::SwappedApp;
use dev_support::chromium::{read_tab_with, Browser, TabState};
use serde::Deserialize;

const TABS: usize = 2;
/// Bound on what takes milliseconds when it works.
const WAIT: Duration = Duration::from_secs(10);
/// How long a settled tab is watched for a second update.
const SETTLE: Duration = Duration::from_millis(500);

/// Reads a [`Tab`]: [`TabState`], and whether the mark the test left on the
/// page's window is still there (gone after a navigation), and the page's own
/// notes (`<html data-…>`).
fn read() -> String {
    read_tab_with(
        r#"
        var root = document.documentElement;
    "#,
        r#"
            marked: window.e2eMark === true,
            socket: root.getAttribute("data-socket"),
            workerFailed: root.hasAttribute("data-worker-failed"),
            visibility: document.visibilityState,
    "#,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tab {
    #[serde(flatten)]
    tab: TabState,
    marked: bool,
    socket: Option<String>,
    worker_failed: bool,
    visibility: String,
}

/// A page titled `title` with `head` in its head and a text field.
fn page(title: &str, head: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         {head}</head><body><h1>{title}</h1><input id=\"draft\" type=\"text\"></body></html>"
    ))
}

/// How many times each app's page `/` was asked for, by title and head (the tests
/// of this file run at once, in one process, each with its own titles and heads).
static PAGE_GETS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn page_gets(title: &str, head: &str) -> usize {
    let gets = PAGE_GETS.lock().expect("the page counter");
    gets.get(&format!("{title}{head}")).copied().unwrap_or(0)
}

/// An app whose page `/` is [`page`] with `title` and `head`, with `/a.js` and
/// `/b.js` (empty scripts), a WebSocket at `/ws` that the server closes at the
/// shutdown (1012, service restart) and an event stream at `/events`.
fn app(title: &'static str, head: &'static str) -> impl FnOnce(&AutoReload) -> Router {
    move |_| {
        let script = || async { ([("content-type", "text/javascript")], "") };
        Router::new()
            .route(
                "/",
                get(move || async move {
                    let mut gets = PAGE_GETS.lock().expect("the page counter");
                    *gets.entry(format!("{title}{head}")).or_default() += 1;
                    page(title, head)
                }),
            )
            .route("/a.js", get(script))
            .route("/b.js", get(script))
            .route("/ws", get(socket))
            .route("/events", get(events))
    }
}

/// A WebSocket that says nothing: it answers the client's Close, and the server
/// closes it when the shutdown begins.
async fn socket(shutdown: ShutdownSignal, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        let closed_by_client = async {
            // Reading answers a Close with a Close; the loop ends with the socket.
            while let Some(Ok(message)) = socket.recv().await {
                if matches!(message, Message::Close(_)) {
                    return;
                }
            }
        };
        if shutdown.run_until(closed_by_client).await.is_some() {
            return;
        }
        let close = CloseFrame {
            code: close_code::RESTART,
            reason: "restart".into(),
        };
        let _ = socket.send(Message::Close(Some(close))).await;
    })
}

/// An event stream of the app's own: one event, then silence (the layer ends it at
/// the shutdown).
async fn events() -> Response {
    let first = futures_util::stream::iter([Ok::<_, Infallible>("data: hi\n\n")]);
    let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from_stream(stream))
        .expect("a response")
}

/// Chromium (or skip), a socket with `first` on it, and `TABS` live tabs on it,
/// each marked; then `scenario`.
async fn with_tabs(
    first: impl FnOnce(&AutoReload) -> Router,
    scenario: impl AsyncFnOnce(&mut Browser, &StdListener, SwappedApp),
) {
    demo::with_swapped_app(first, async |browser, url, socket, app| {
        browser.open_live(url, TABS, WAIT).await;
        mark(browser).await;
        scenario(browser, socket, app).await;
    })
    .await;
}

async fn mark(browser: &Browser) {
    for i in 0..browser.tabs.len() {
        browser.exec(i, "window.e2eMark = true;", vec![]).await;
    }
}

/// Waits for every tab to be live on `app` with `title`, and checks it is still so
/// [`SETTLE`] later; returns the tabs.
async fn settled_on(browser: &Browser, app: &SwappedApp, title: &str) -> Vec<Tab> {
    let instance = app.reload.instance_id().to_string();
    let on = |tab: &Tab| {
        tab.tab.is_live()
            && tab.tab.title == title
            && tab.tab.instance.as_deref() == Some(&instance)
    };
    let what = format!("every tab to be live on {title:?}, {instance}");
    wait_all(browser, &what, |_, tab| on(tab)).await;
    tokio::time::sleep(SETTLE).await;
    let what = format!("every tab to stay on {title:?}");
    wait_all(browser, &what, |i, tab| {
        assert!(on(tab), "tab {i} left {title:?}: {tab:?}");
        true
    })
    .await
}

/// Asserts what every tab did: morphed (no navigation) or reloaded, with its
/// update counter at `updates`.
fn expect(tabs: &[Tab], morphed: bool, updates: &str, when: &str) {
    for (i, tab) in tabs.iter().enumerate() {
        let did = if morphed { "morphed" } else { "reloaded" };
        assert_eq!(
            tab.marked, morphed,
            "tab {i} {when} should have {did}: {tab:?}"
        );
        assert_eq!(
            tab.tab.reloads.as_deref(),
            Some(updates),
            "tab {i} {when}: {tab:?}"
        );
    }
}

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn same_scripts_morph_and_a_changed_head_script_reloads() {
    let script_a = "<script src=\"/a.js\"></script>";
    let script_b = "<script src=\"/b.js\"></script>";
    with_tabs(app("first", script_a), async |browser, socket, app| {
        let app = app.swap(socket, self::app("second", script_a)).await;
        let tabs = settled_on(browser, &app, "second").await;
        expect(&tabs, true, "1", "on a page with the same scripts");
        // The shared worker fetched the page once for both tabs.
        assert_eq!(page_gets("second", script_a), 1, "GET / of the second app");

        let app = app.swap(socket, self::app("third", script_b)).await;
        let tabs = settled_on(browser, &app, "third").await;
        expect(&tabs, false, "2", "on a page whose head script changed");
    })
    .await;
}

/// Opens a WebSocket to `/ws` once the page has loaded, and notes its state in
/// `<html data-socket>`; `?close` closes it once open.
const SOCKET_PAGE: &str = r#"<script>
addEventListener("load", function () {
    var socket = new WebSocket("ws://" + location.host + "/ws");
    socket.onopen = function () {
        document.documentElement.setAttribute("data-socket", "open");
        if (location.search === "?close") socket.close();
    };
    socket.onclose = function () {
        document.documentElement.setAttribute("data-socket", "closed");
    };
});
</script>"#;

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn a_page_whose_websocket_the_restart_closed_reloads() {
    with_tabs(app("first", SOCKET_PAGE), async |browser, socket, app| {
        let open = |_: usize, tab: &Tab| tab.socket.as_deref() == Some("open");
        wait_all(browser, "every tab's socket to be open", open).await;
        let app = app.swap(socket, self::app("second", SOCKET_PAGE)).await;
        let tabs = settled_on(browser, &app, "second").await;
        expect(&tabs, false, "1", "after the restart closed its socket");

        // Control: the same pages, whose sockets they closed themselves, morph.
        let url = format!("http://{}/?close", socket.local_addr().expect("address"));
        for i in 0..TABS {
            browser.switch(i).await;
            browser.client.goto(&url).await.expect("loading ?close");
        }
        let closed = |_: usize, tab: &Tab| tab.socket.as_deref() == Some("closed");
        wait_all(browser, "every tab to close its socket itself", closed).await;
        mark(browser).await;
        let app = app.swap(socket, self::app("third", SOCKET_PAGE)).await;
        let tabs = settled_on(browser, &app, "third").await;
        expect(&tabs, true, "2", "after closing its own socket");
    })
    .await;
}

/// Starts every shared worker from a URL that does not exist, and notes the
/// worker's error in `<html data-worker-failed>`.
const BROKEN_WORKER_PAGE: &str = r#"<script>
var RealSharedWorker = window.SharedWorker;
window.SharedWorker = function (url, options) {
    var worker = new RealSharedWorker("/no-such-worker.js", options);
    worker.addEventListener("error", function () {
        document.documentElement.setAttribute("data-worker-failed", "");
    });
    return worker;
};
</script>"#;

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn a_worker_that_fails_to_start_leaves_each_tab_its_own_stream() {
    with_tabs(
        app("first", BROKEN_WORKER_PAGE),
        async |browser, socket, app| {
            // Chromium reports the worker's error to some of the tabs, not always
            // to any: a tab whose worker does not answer falls back too.
            let what = "every tab to be live on a stream of its own";
            let tabs = wait_all(browser, what, |_, tab| tab.tab.is_live()).await;
            let errors = tabs.iter().filter(|tab| tab.worker_failed).count();
            eprintln!("{errors} of {TABS} tabs heard their worker's error event");
            let streams = app.reload.open_streams();
            assert_eq!(streams, TABS, "one stream per tab: {tabs:?}");
            assert_eq!(
                app.reload.building(),
                TABS,
                "every tab's stream hears `building`"
            );
            wait_all(browser, "every tab to show the building badge", |_, tab| {
                tab.tab.autoreload.as_deref() == Some("building")
            })
            .await;
            let app = app
                .swap(socket, self::app("second", BROKEN_WORKER_PAGE))
                .await;
            let tabs = settled_on(browser, &app, "second").await;
            expect(&tabs, true, "1", "on their own streams");
        },
    )
    .await;
}

/// Opens the app's event stream once the page has loaded, and notes (in ms on the
/// browser's clock) when it errs and when it opens.
const EVENTS_PAGE: &str = r#"<script>
window.e2eStream = { errors: [], opens: [] };
addEventListener("load", function () {
    var now = function () { return performance.timeOrigin + performance.now(); };
    var source = new EventSource("/events");
    source.onopen = function () { e2eStream.opens.push(now()); };
    source.onerror = function () { e2eStream.errors.push(now()); };
});
</script>"#;

#[derive(Debug, Deserialize)]
struct Stream {
    errors: Vec<f64>,
    opens: Vec<f64>,
}

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn an_app_event_stream_is_back_within_500_ms_of_a_swap() {
    with_tabs(app("first", EVENTS_PAGE), async |browser, socket, app| {
        let read = "return window.e2eStream;";
        let what = "every tab's stream to open";
        browser
            .wait_all_as(read, what, WAIT, |_, s: &Stream| s.opens.len() == 1)
            .await;
        let app = app.swap(socket, self::app("second", EVENTS_PAGE)).await;
        let what = "every tab's stream to open again";
        let streams = browser
            .wait_all_as(read, what, WAIT, |_, s: &Stream| s.opens.len() == 2)
            .await;
        let back: Vec<f64> = streams.iter().map(|s| s.opens[1] - s.errors[0]).collect();
        eprintln!("the app's stream back after {back:?} ms (from its end to its next open)");
        for (i, ms) in back.iter().enumerate() {
            assert!(*ms <= 500.0, "tab {i}: back after {ms:.0} ms, over 500 ms");
        }
        let tabs = settled_on(browser, &app, "second").await;
        expect(&tabs, true, "1", "with an event stream of its own");
    })
    .await;
}

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn a_hidden_tab_updates_when_shown() {
    with_tabs(app("first", ""), async |browser, socket, app| {
        // A third page in a window of its own, minimized: hidden.
        let url = format!("http://{}/", socket.local_addr().expect("address"));
        let window = browser
            .client
            .new_window(false)
            .await
            .expect("a new window");
        browser
            .client
            .switch_to_window(window.handle.clone())
            .await
            .expect("switching");
        browser.tabs.push(window.handle);
        browser.client.goto(&url).await.expect("loading the page");
        browser
            .client
            .minimize_window()
            .await
            .expect("minimizing the window");
        mark(browser).await;
        let hidden = TABS;
        let what = "the minimized window's page to be hidden and live";
        wait_all(browser, what, |i, tab| {
            tab.tab.is_live() && (i == hidden) == (tab.visibility == "hidden")
        })
        .await;

        let old = app.reload.instance_id().to_string();
        let app = app.swap(socket, self::app("second", "")).await;
        let instance = app.reload.instance_id().to_string();
        let what = "the visible tabs to morph, the hidden one to wait";
        wait_all(browser, what, |i, tab| {
            if i == hidden {
                tab.tab.instance.as_deref() == Some(&old) && tab.tab.reloads.is_none()
            } else {
                tab.tab.is_live() && tab.tab.instance.as_deref() == Some(&instance)
            }
        })
        .await;
        tokio::time::sleep(SETTLE).await;
        let tabs = wait_all(browser, "every tab read", |_, _| true).await;
        let waiting = &tabs[hidden];
        assert_eq!(
            waiting.tab.title, "first",
            "the hidden tab waits: {waiting:?}"
        );
        assert_eq!(
            waiting.tab.reloads, None,
            "the hidden tab waits: {waiting:?}"
        );
        assert_eq!(
            waiting.tab.autoreload.as_deref(),
            Some("hidden"),
            "{waiting:?}"
        );

        browser.switch(hidden).await;
        browser
            .client
            .maximize_window()
            .await
            .expect("showing the window");
        let tabs = settled_on(browser, &app, "second").await;
        assert_eq!(
            tabs[hidden].visibility, "visible",
            "shown: {:?}",
            tabs[hidden]
        );
        expect(&tabs, true, "1", "once shown");
    })
    .await;
}

/// [`Browser::wait_all_as`] with [`read`], at most [`WAIT`].
async fn wait_all(
    browser: &Browser,
    what: &str,
    done: impl FnMut(usize, &Tab) -> bool,
) -> Vec<Tab> {
    browser.wait_all_as(&read(), what, WAIT, done).await
}
