//! Live-server mode (`axum-autoreload --root DIR`) in a real headless Chromium: one
//! tab on a folder with `index.html`, `style.css`, an `<img>` of `logo.svg` and a
//! CSS background from `bg.svg`.
//!
//! 1. Editing `style.css` swaps the stylesheet in place: the new style applies with
//!    no navigation (a marker set in the page survives, the reload counter stays
//!    unset) and exactly one stylesheet link is left. Timed over [`CSS_EDITS`]
//!    edits, from the write to the new style applied, measured in the page.
//! 2. An empty `style.css` (caught half-written) changes nothing, not even a new
//!    link in the page; the write that fills it applies.
//! 3. Editing `logo.svg` re-requests the `<img>`, editing `bg.svg` the CSS
//!    background, with no navigation; the background stays new after the next
//!    stylesheet swap.
//! 4. Editing `index.html` morphs the new page into the tab, exactly once, with no
//!    navigation (the marker survives); the swapped stylesheet and the refreshed
//!    images stay as they are.
//!
//! Needs chromium and chromedriver on PATH. Without them the test is ignored (the
//! build script's cfg), except under CI (`CI=true`), where it fails. Run it with
//! `cargo test --test browser_live -- --nocapture` to see the timings.

#[path = "demo/support.rs"]
mod demo;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dev_support::chromium::{read_tab_with, summary_ms, Browser, Options, TabState};
use dev_support::socket::PassedSocket;
use dev_support::temp::temp_dir;
use dev_support::wait::until;
use fantoccini::Locator;
use serde::Deserialize;
use serde_json::json;

/// Bound on anything that takes milliseconds when it works.
const WAIT: Duration = Duration::from_secs(5);
/// How long a change that must not happen is waited for.
const QUIET: Duration = Duration::from_millis(300);
/// How long the tab is watched for a second reload.
const SETTLE: Duration = Duration::from_millis(800);
/// Stylesheet edits to time.
const CSS_EDITS: usize = 20;
/// The value of `window.__marker`, which only a navigation removes.
const MARKER: i64 = 42;

const INITIAL_COLOR: &str = "rgb(0, 0, 255)";
const OLD_HEADING: &str = "Before the edit";
const NEW_HEADING: &str = "After the edit";
const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 128, 0];

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn css_images_and_html_update_live() {
    let browser = Browser::launch(Options::default()).await;
    let work = temp_dir("axum-autoreload-live-e2e-");
    let site = work.path();
    write(site, "index.html", &index_html(OLD_HEADING));
    write(site, "style.css", &style(INITIAL_COLOR));
    write(site, "logo.svg", &svg(30, 15, "blue"));
    write(site, "bg.svg", &svg(40, 40, "red"));
    let socket = PassedSocket::new();
    let root = site.to_str().expect("a UTF-8 temporary path");
    let _server = demo::start(&socket, &["--root", root]).await;
    let url = format!("http://{}/", socket.addr);
    browser
        .run(async |browser| {
            browser.open_tabs(&url, 1).await;
            scenario(&Tab { browser, url, site }).await;
        })
        .await;
}

/// The steps of the module doc, on the one tab.
async fn scenario(tab: &Tab<'_>) {
    let start = tab
        .wait_for("the page to be live, styled and with its logo", |page| {
            page.tab.is_live() && page.h1_color == INITIAL_COLOR && page.logo_width == 30
        })
        .await;
    assert_eq!(start.h1_text, OLD_HEADING, "at the start: {start:?}");
    assert_eq!(start.links, ["style.css"], "at the start: {start:?}");
    assert_eq!(start.tab.reloads, None, "at the start: {start:?}");
    let bg = tab.bg_color().await;
    assert!(near(bg, RED), "the background at the start: {bg:?}");
    let mark = "window.__marker = arguments[0];";
    tab.browser.exec(0, mark, vec![json!(MARKER)]).await;

    // Step 1. CSS_EDITS edits of style.css.
    let mut times = Vec::new();
    for edit in 0..CSS_EDITS {
        let when = format!("after style.css edit {edit}");
        let (took, _) = tab.swap_css(&edit_color(edit), &when).await;
        times.push(took);
    }
    let summary = summary_ms(&times);
    eprintln!("style.css write to new style applied, {CSS_EDITS} edits: {summary}");

    // Step 2. An empty style.css, then filled.
    let before = tab.read().await;
    tab.browser.exec(0, COUNT_ADDED_LINKS, Vec::new()).await;
    tab.write("style.css", "");
    tokio::time::sleep(QUIET).await;
    let page = tab.read().await;
    let when = format!("{} ms after an empty style.css", QUIET.as_millis());
    page.expect_in_place(&when);
    assert_eq!(page.h1_color, before.h1_color, "{when}: {page:?}");
    assert_eq!(page.links, before.links, "{when}: {page:?}");
    assert_eq!(
        page.links_added,
        Some(0),
        "{when}: no stylesheet should be fetched (the server announced the empty file?): \
         {page:?}"
    );

    let when = "after style.css was filled";
    let (took, page) = tab.swap_css(&edit_color(CSS_EDITS), when).await;
    assert_eq!(page.links_added, Some(1), "{when}: {page:?}");
    eprintln!("style.css filled after being empty: new style applied after {took:.0} ms");

    // Step 3. logo.svg and bg.svg edited.
    let written = Instant::now();
    tab.write("logo.svg", &svg(90, 45, "green"));
    let page = tab
        .wait_for("the logo to be the new one (naturalWidth 90)", |page| {
            page.logo_width == 90
        })
        .await;
    let took = written.elapsed().as_millis();
    eprintln!("logo.svg write to the new <img> loaded: {took} ms (polled over WebDriver)");
    page.expect_in_place("after logo.svg was edited");
    assert!(
        page.logo_src.contains("autoreload="),
        "the logo should have been re-requested with a fresh query: {page:?}"
    );

    let written = Instant::now();
    tab.write("bg.svg", &svg(40, 40, "green"));
    let what = format!("#bg to turn green {GREEN:?} after bg.svg was edited");
    until(&what, WAIT, || async move {
        near(tab.bg_color().await, GREEN).then_some(())
    })
    .await;
    let took = written.elapsed().as_millis();
    eprintln!("bg.svg write to the new background shown: {took} ms (polled over WebDriver)");
    let page = tab.read().await;
    page.expect_in_place("after bg.svg was edited");
    assert!(
        page.bg_image.contains("bg.svg?autoreload="),
        "the background should have been re-requested with a fresh query: {page:?}"
    );

    // The next stylesheet swap brings the rule back as the file has it,
    // `url("bg.svg")`: it must not show the old background again.
    let when = "after a style.css edit that follows the bg.svg edit";
    tab.swap_css(&edit_color(CSS_EDITS + 1), when).await;
    tokio::time::sleep(QUIET).await;
    let page = tab.read().await;
    page.expect_in_place(when);
    let bg = tab.bg_color().await;
    assert!(
        near(bg, GREEN),
        "after a style.css edit that follows the bg.svg edit, the background should \
         still be the new bg.svg (green {GREEN:?}), not the old one (red {RED:?}): it is \
         {bg:?}; {page:?}"
    );

    // Step 4. index.html edited.
    let written = Instant::now();
    tab.write("index.html", &index_html(NEW_HEADING));
    let page = tab
        .wait_for("the tab to morph the new index.html in", |page| {
            page.tab.is_live() && page.h1_text == NEW_HEADING
        })
        .await;
    let took = written.elapsed().as_millis();
    eprintln!("index.html write to the morphed page live: {took} ms");
    for when in ["after index.html was edited", "a moment later"] {
        if when == "a moment later" {
            tokio::time::sleep(SETTLE).await;
        }
        let page = tab.read().await;
        assert_eq!(page.tab.reloads.as_deref(), Some("1"), "{when}: {page:?}");
        assert_eq!(
            page.marker,
            Some(MARKER),
            "{when}: the marker is gone, the page navigated: {page:?}"
        );
        assert_eq!(page.h1_text, NEW_HEADING, "{when}: {page:?}");
        assert!(
            page.logo_src.contains("/logo.svg?autoreload="),
            "{when}: the image refreshed in place stays: {page:?}"
        );
        assert_eq!(page.tab.url, tab.url, "{when}: {page:?}");
        assert!(
            page.links.len() == 1 && page.links[0].contains("/style.css?autoreload="),
            "{when}: the stylesheet swapped in place stays: {page:?}"
        );
    }
    assert_eq!(
        page.h1_color,
        edit_color(CSS_EDITS + 1),
        "the morphed page has the last style.css: {page:?}"
    );
    assert_eq!(
        page.logo_width, 90,
        "the morphed page has the new logo: {page:?}"
    );
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::write(&path, content)
        .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

fn index_html(heading: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>live</title>\n<link rel=\"stylesheet\" href=\"style.css\"></head>\n\
         <body><h1>{heading}</h1>\n<img id=\"logo\" src=\"logo.svg\" alt=\"logo\">\n\
         <div id=\"bg\"></div>\n</body></html>\n"
    )
}

fn style(color: &str) -> String {
    format!(
        "h1 {{ color: {color}; }}\n\
         #bg {{ width: 40px; height: 40px; background-image: url(\"bg.svg\"); }}\n"
    )
}

fn svg(width: u32, height: u32, fill: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"{fill}\"/></svg>\n"
    )
}

/// The h1's color after edit `edit`, as `getComputedStyle` gives it.
fn edit_color(edit: usize) -> String {
    format!("rgb({}, 128, 64)", edit + 1)
}

/// Whether two colors are the same but for rounding.
fn near(seen: [u8; 3], want: [u8; 3]) -> bool {
    seen.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 8)
}

/// What the test reads from the page, with [`read_page`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(flatten)]
    tab: TabState,
    /// `window.__marker`: gone after a navigation.
    marker: Option<i64>,
    h1_text: String,
    h1_color: String,
    /// The `href` attribute of every `<link rel=stylesheet>`.
    links: Vec<String>,
    /// How many `<link>` the page got since [`COUNT_ADDED_LINKS`] ran.
    links_added: Option<u64>,
    logo_width: u64,
    logo_src: String,
    bg_image: String,
}

/// Reads a [`Page`]: [`TabState`] and more.
fn read_page() -> String {
    read_tab_with(
        r#"
        var h1 = document.querySelector("h1");
        var logo = document.getElementById("logo");
        var bg = document.getElementById("bg");
        var links = document.querySelectorAll('link[rel~="stylesheet"]');
    "#,
        r#"
            marker: window.__marker === undefined ? null : window.__marker,
            h1Text: h1 ? h1.textContent : "",
            h1Color: h1 ? getComputedStyle(h1).color : "",
            links: Array.prototype.map.call(links, function (l) { return l.getAttribute("href"); }),
            linksAdded: window.__linksAdded === undefined ? null : window.__linksAdded,
            logoWidth: logo ? logo.naturalWidth : 0,
            logoSrc: logo ? logo.src : "",
            bgImage: bg ? getComputedStyle(bg).backgroundImage : "",
    "#,
    )
}

/// Counts in `window.__linksAdded` the `<link>` elements added to the head from now.
const COUNT_ADDED_LINKS: &str = r#"
    window.__linksAdded = 0;
    new MutationObserver(function (mutations) {
        mutations.forEach(function (mutation) {
            mutation.addedNodes.forEach(function (node) {
                if (node.nodeName === "LINK") window.__linksAdded += 1;
            });
        });
    }).observe(document.head, { childList: true });
"#;

/// Starts checking, on every turn of the event loop, whether the h1's computed
/// color is `arguments[0]`; `window.__applied` resolves with `Date.now()` when it
/// is, or with null after `arguments[1]` ms.
const WATCH_COLOR: &str = r#"
    var want = arguments[0];
    var deadline = Date.now() + arguments[1];
    var h1 = document.querySelector("h1");
    window.__applied = new Promise(function (resolve) {
        (function check() {
            if (getComputedStyle(h1).color === want) resolve(Date.now());
            else if (Date.now() > deadline) resolve(null);
            else setTimeout(check, 0);
        })();
    });
"#;

/// Waits for `window.__applied` (execute_async: the callback is the last argument).
const AWAIT_APPLIED: &str = "window.__applied.then(arguments[0]);";

/// The color (RGB) at the middle of a PNG given as bytes, decoded in the page
/// (execute_async).
const PNG_MIDDLE: &str = r#"
    var done = arguments[arguments.length - 1];
    var blob = new Blob([new Uint8Array(arguments[0])], { type: "image/png" });
    createImageBitmap(blob).then(function (bitmap) {
        var canvas = document.createElement("canvas");
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
        var context = canvas.getContext("2d");
        context.drawImage(bitmap, 0, 0);
        var pixel = context.getImageData(bitmap.width >> 1, bitmap.height >> 1, 1, 1).data;
        done([pixel[0], pixel[1], pixel[2]]);
    }, function (err) { done(String(err)); });
"#;

impl Page {
    /// Still the page first loaded: no navigation, no reload.
    fn expect_in_place(&self, when: &str) {
        assert_eq!(
            self.marker,
            Some(MARKER),
            "{when}: the marker is gone, the page navigated: {self:?}"
        );
        assert_eq!(
            self.tab.reloads, None,
            "{when}: the page should not have reloaded: {self:?}"
        );
        assert!(self.tab.is_live(), "{when}: the page is not live: {self:?}");
    }
}

/// The one tab of the test.
struct Tab<'b> {
    browser: &'b Browser,
    url: String,
    /// The folder served.
    site: &'b Path,
}

impl Tab<'_> {
    fn write(&self, name: &str, content: &str) {
        write(self.site, name, content);
    }

    async fn read(&self) -> Page {
        let page = self.browser.read_as(0, &read_page()).await;
        page.unwrap_or_else(|err| panic!("reading the page: {err}"))
    }

    /// Reads the page until `done` holds, at most [`WAIT`].
    async fn wait_for(&self, what: &str, done: impl Fn(&Page) -> bool) -> Page {
        let mut pages = (self.browser)
            .wait_all_as(&read_page(), what, WAIT, |_, page| done(page))
            .await;
        pages.remove(0)
    }

    /// Writes style.css with the h1 in `color`, waits for the old link to go and
    /// checks the page: still the one first loaded, the h1 in `color`, one
    /// stylesheet link, the fresh one. Returns the time in ms from the write to the
    /// page's h1 in that color (the page checks the style on every turn of its
    /// event loop, from before the write) and the page.
    async fn swap_css(&self, color: &str, when: &str) -> (f64, Page) {
        let limit = u64::try_from(WAIT.as_millis()).expect("a few seconds");
        let watch = vec![json!(color), json!(limit)];
        self.browser.exec(0, WATCH_COLOR, watch).await;
        let written = SystemTime::now().duration_since(UNIX_EPOCH);
        self.write("style.css", &style(color));
        let applied = (self.browser.client)
            .execute_async(AWAIT_APPLIED, Vec::new())
            .await;
        let applied = applied.unwrap_or_else(|err| {
            panic!("waiting for the h1 to turn {color} after a style.css edit: {err}")
        });
        let Some(applied) = applied.as_f64() else {
            let page = self.browser.read_as::<Page>(0, &read_page()).await;
            panic!(
                "the h1 did not turn {color} within {WAIT:?} of the style.css edit \
                 ({applied}): {page:?}"
            );
        };
        let took = applied - written.expect("after 1970").as_secs_f64() * 1000.0;
        let page = self
            .wait_for(&format!("one stylesheet link {when}"), |page| {
                page.links.len() == 1
            })
            .await;
        page.expect_in_place(when);
        assert_eq!(page.h1_color, color, "{when}: {page:?}");
        assert!(
            page.links[0].starts_with("http") && page.links[0].contains("autoreload="),
            "{when}: the link left should be the fresh one: {page:?}"
        );
        (took, page)
    }

    /// The color at the middle of `#bg`, from a screenshot of it.
    async fn bg_color(&self) -> [u8; 3] {
        let client = &self.browser.client;
        let element = client.find(Locator::Id("bg")).await.expect("finding #bg");
        let png = element.screenshot().await.expect("a screenshot of #bg");
        let pixel = client.execute_async(PNG_MIDDLE, vec![json!(png)]).await;
        let pixel = pixel.expect("decoding the screenshot of #bg");
        serde_json::from_value(pixel.clone())
            .unwrap_or_else(|err| panic!("decoding the screenshot of #bg: {err}: {pixel}"))
    }
}
