//! The demo's live feed in a real headless Chromium: ten feed tabs in one browser
//! all show a post made in one of them, without navigating, and the half-typed
//! message (and focus) of another tab survives the update. Prints the time from
//! the click on "Post" to the other tabs' update.
//!
//! Needs chromium and chromedriver on PATH: without them the test is ignored (the
//! build script's cfg), except under CI (`CI=true`), where it fails. Run it with
//! `cargo test --test demo_browser -- --nocapture` to see the figures;
//! `-- --ignored --nocapture` also measures how many tabs work when each opens its
//! own stream (`/posts?stream=direct`).

#[path = "../../tests/demo/support.rs"]
mod demo;

use std::time::Duration;

use dev_support::chromium::{summary_ms, Browser, Options};
use dev_support::socket::PassedSocket;
use dev_support::wait::until;
use fantoccini::Locator;
use serde_json::{json, Value};

/// Feed tabs to open: more than the six HTTP/1.1 connections Chromium allows per
/// host, which only the shared stream makes possible.
const TABS: usize = 10;
/// Posts to time.
const ROUNDS: usize = 5;
const SETTLE: Duration = Duration::from_secs(20);
const HALF_TYPED: &str = "half-typed, not sent yet";

/// Runs `scenario` on a fresh demo server and a Chromium session whose page loads
/// time out after `page_load`, with the feed's URL.
async fn with_browser(page_load: Duration, scenario: impl AsyncFnOnce(&mut Browser, String)) {
    let options = Options {
        page_load: Some(page_load),
        unthrottled_background_tabs: true,
    };
    let browser = Browser::launch(options).await;
    let dir = dev_support::temp::temp_dir("axum-autoreload-feed-e2e-");
    let db = dir.path().join("posts.sqlite3");
    let db = db.to_str().expect("a UTF-8 path");
    let static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static");
    let args = ["--db", db, "--static-dir", static_dir];
    let socket = PassedSocket::new();
    let _server = demo::start(&socket, &args).await;
    let url = format!("http://127.0.0.1:{}/posts", socket.port());
    browser
        .run(async |browser| scenario(browser, url).await)
        .await;
}

const FEED_STATE: &str = "return document.documentElement.dataset.feed || null;";

/// Notes in `window.seenAt` when the feed first shows `arguments[0]` (in ms on
/// the browser's shared clock).
const WATCH_FOR: &str = r#"
    const text = arguments[0];
    window.seenAt = null;
    const check = () => {
        if (window.seenAt === null && document.getElementById("posts").textContent.includes(text)) {
            window.seenAt = performance.timeOrigin + performance.now();
        }
    };
    new MutationObserver(check).observe(document.getElementById("feed"),
        { childList: true, subtree: true, characterData: true });
    check();
"#;

/// Fills the form and clicks "Post"; returns the time of the click.
const POST: &str = r#"
    const form = document.getElementById("post-form");
    form.elements.username.value = arguments[0];
    form.elements.message.value = arguments[1];
    const at = performance.timeOrigin + performance.now();
    form.querySelector("button[type=submit]").click();
    return at;
"#;

const FORM_STATE: &str = r##"
    const form = document.getElementById("post-form");
    const error = document.getElementById("message-error");
    return {
        username: form.elements.username.value,
        message: form.elements.message.value,
        focused: document.activeElement ? document.activeElement.id : null,
        status: document.getElementById("post-status").textContent,
        error: error ? error.textContent : null,
        posts: document.querySelectorAll("#posts li.post").length,
        url: location.href,
    };
"##;

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn ten_feed_tabs_update_live_and_keep_a_half_typed_message() {
    with_browser(SETTLE, async |browser, url| {
        browser.open_tabs(&url, TABS).await;
        let what = "every feed stream to be live";
        let live = |_, state: &Value| state == "live";
        browser.wait_all_as(FEED_STATE, what, SETTLE, live).await;
        eprintln!("{TABS} feed tabs live in one Chromium");

        // The first tab: a name and half a message typed, the cursor in it.
        let (other, poster) = (0, TABS - 1);
        browser.switch(other).await;
        for (field, text) in [("#username", "carol"), ("#message", HALF_TYPED)] {
            let input = browser.client.find(Locator::Css(field)).await;
            let typed = input.expect("the form's field").send_keys(text).await;
            typed.unwrap_or_else(|err| panic!("typing in {field}: {err}"));
        }

        let mut to_other = Vec::new();
        let mut to_all = Vec::new();
        for round in 0..ROUNDS {
            let text = format!("post {round} <b>from the last tab</b>");
            for tab in 0..TABS {
                browser.exec(tab, WATCH_FOR, vec![json!(text)]).await;
            }
            let clicked = browser
                .exec(poster, POST, vec![json!("dave"), json!(text)])
                .await;
            let clicked = clicked.as_f64().expect("the click time");
            let what = "every tab to show the post";
            let seen_at = "return window.seenAt;";
            let seen = browser.wait_all_as(seen_at, what, SETTLE, |_, at: &Value| at.is_number());
            let seen = seen.await;
            let seen: Vec<f64> = seen.iter().filter_map(Value::as_f64).collect();
            to_other.push(seen[0] - clicked);
            to_all.push(seen.iter().copied().fold(f64::MIN, f64::max) - clicked);
        }
        let (to_other, to_all) = (summary_ms(&to_other), summary_ms(&to_all));
        eprintln!("click on Post to the other tab's update, {ROUNDS} posts: {to_other}");
        eprintln!("click on Post to all {TABS} tabs updated: {to_all}");

        // The other tab: updated in place, what was typed and the focus kept.
        let state = browser.exec(other, FORM_STATE, Vec::new()).await;
        assert_eq!(state["url"], json!(url), "no navigation: {state}");
        assert_eq!(state["posts"], json!(ROUNDS), "{state}");
        assert_eq!(state["username"], "carol", "{state}");
        assert_eq!(state["message"], HALF_TYPED, "{state}");
        assert_eq!(state["focused"], "message", "{state}");
        // The posting tab: the message cleared, the name kept.
        let state = browser.exec(poster, FORM_STATE, Vec::new()).await;
        assert_eq!(state["message"], "", "{state}");
        assert_eq!(state["username"], "dave", "{state}");
        assert_eq!(state["status"], "Posted.", "{state}");
        let script = "return document.getElementById('posts').innerHTML;";
        let shown = browser.exec(poster, script, Vec::new()).await;
        assert!(
            (shown.as_str())
                .is_some_and(|html| html.contains("&lt;b&gt;from the last tab&lt;/b&gt;")),
            "user text shows as text: {shown}"
        );

        // A blank message (which passes the browser's `required`): the 422 form
        // is swapped in with its error, and nothing is posted.
        browser
            .exec(poster, POST, vec![json!("dave"), json!("   ")])
            .await;
        let state = until("the error in the form", SETTLE, || async {
            let state: Value = browser.read_as(poster, FORM_STATE).await.ok()?;
            (!state["error"].is_null()).then_some(state)
        })
        .await;
        assert_eq!(state["error"], "Enter a message.", "{state}");
        assert_eq!(state["posts"], json!(ROUNDS), "{state}");
        let state = browser.exec(other, FORM_STATE, Vec::new()).await;
        assert_eq!(state["posts"], json!(ROUNDS), "{state}");
        assert_eq!(state["message"], HALF_TYPED, "{state}");
    })
    .await;
}

/// A measurement, not a check: how many feed tabs load and go live when each
/// opens its own stream instead of sharing one.
#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn feed_tabs_with_one_stream_each() {
    with_browser(Duration::from_secs(5), async |browser, url| {
        let url = format!("{url}?stream=direct");
        let mut loaded = 0;
        while loaded < TABS {
            if let Err(err) = browser.open_tab(&url).await {
                eprintln!("tab {loaded} did not load {url}: {err}");
                break;
            }
            loaded += 1;
        }
        let mut live = 0;
        for tab in 0..loaded {
            if browser.exec(tab, FEED_STATE, Vec::new()).await == "live" {
                live += 1;
            }
        }
        eprintln!("one stream per tab: {loaded} of {TABS} feed tabs loaded, {live} live");
    })
    .await;
}
