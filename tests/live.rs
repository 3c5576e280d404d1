//! Live static files: a change in the watched directory reaches the reload stream
//! as the right event, once per burst; build tools can trigger the same by `POST`.

#[path = "demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum_autoreload::AutoReload;
use dev_support::http;
use dev_support::sse::EventStream;

/// How long an event may take to come: a correctness wait, not a latency goal
/// (the debounce is 40 ms; a loaded machine may be slower).
const EVENT: Duration = Duration::from_secs(5);
/// How long nothing must come where nothing should.
const QUIET: Duration = Duration::from_millis(300);

/// The library's pieces in this process: a temporary directory served at
/// `/static` and watched, and a reload stream that heard `hello`.
struct Live {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    stream: EventStream,
}

async fn live() -> Live {
    live_with_dirs(&[]).await
}

/// [`live`] with the subdirectories `dirs` made before watching begins.
async fn live_with_dirs(dirs: &[&str]) -> Live {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in dirs {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    let reload = AutoReload::builder().enabled(true).build();
    axum_autoreload::watch_static(dir.path(), "/static", &reload).expect("watch");
    let app = Router::new()
        .nest_service("/static", axum_autoreload::static_files(dir.path()))
        .layer(reload.layer());
    let addr = demo::serve_here(app, reload).await;
    let stream = EventStream::greeted(addr).await;
    Live { addr, dir, stream }
}

impl Live {
    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.path(file), text).expect("write");
    }

    /// Asserts that the stream says, once, that `file` changed.
    async fn expect_one_css_event(&mut self, file: &str) {
        let css = ("css".to_owned(), format!("/static/{file}"));
        assert_eq!(self.stream.next_within(EVENT).await, Some(css), "{file}");
        let more = self.stream.next_within(QUIET).await;
        assert_eq!(more, None, "one event for {file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_file_gives_its_event() {
    let mut live = live_with_dirs(&["img"]).await;
    for (file, expected) in [
        ("app.css", ("css", "/static/app.css")),
        ("img/logo.png", ("image", "/static/img/logo.png")),
        // A page is morphed into every tab; a script reloads them.
        ("page.html", ("morph", "")),
        ("app.js", ("reload", "")),
    ] {
        let written = Instant::now();
        live.write(file, "some content");
        let event = live.stream.next_within(EVENT).await;
        let (name, data) = event.unwrap_or_else(|| panic!("no event for {file} within {EVENT:?}"));
        eprintln!("{file}: {name} after {} ms", written.elapsed().as_millis());
        assert_eq!(name, expected.0, "{file}");
        if !expected.1.is_empty() {
            assert_eq!(data, expected.1, "{file}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_is_one_event_and_an_empty_file_none() {
    let mut live = live().await;
    for i in 0..20 {
        live.write("burst.css", &format!("body {{ margin: {i}px }}"));
    }
    live.expect_one_css_event("burst.css").await;
    // Caught half-written (tailwind empties its output first): nothing, then the
    // write that fills it.
    live.write("burst.css", "");
    let event = live.stream.next_within(QUIET).await;
    assert_eq!(event, None, "an empty sheet is not announced");
    live.write("burst.css", "body { margin: 0 }");
    live.expect_one_css_event("burst.css").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_tools_trigger_by_post_and_other_sites_cannot() {
    let mut live = live().await;
    let (addr, port) = (live.addr, live.addr.port());
    let host = format!("Host: localhost:{port}\r\n");
    let css = "POST /auto_refresh/reload?path=/static/out.css";
    let css = http::send(addr, css, &host, "").await;
    assert_eq!((css.status, css.text().as_str()), (200, "{\"streams\":1}"));
    let event = live.stream.next_within(EVENT).await;
    assert_eq!(event, Some(("css".into(), "/static/out.css".into())));

    let own = format!("{host}Origin: http://localhost:{port}\r\n");
    let all = http::send(addr, "POST /auto_refresh/reload", &own, "").await;
    assert_eq!(all.status, 200);
    assert_eq!(live.stream.event(EVENT).await.0, "reload");

    let foreign = format!("{host}Origin: https://evil.example\r\n");
    let foreign = http::send(addr, "POST /auto_refresh/reload", &foreign, "").await;
    assert_eq!(foreign.status, 403);
    assert_eq!(live.stream.next_within(QUIET).await, None, "nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_right_after_watching_begins_is_announced() {
    // Files are stamped from the kernel's coarse clock, a tick behind the clock a
    // program reads: a write in the first tick looks older than the watch.
    let dir = tempfile::tempdir().expect("tempdir");
    let reload = AutoReload::builder().enabled(true).build();
    let addr = demo::serve_here(Router::new(), reload.clone()).await;
    let stream = EventStream::greeted(addr).await;
    axum_autoreload::watch_static(dir.path(), "/static", &reload).expect("watch");
    let mut live = Live { addr, dir, stream };
    live.write("first.css", "a { color: red }");
    live.expect_one_css_event("first.css").await;
}

/// `cp -p` and `rsync -a` put a file back with an older modification time;
/// editors write a temporary file beside it and rename it over the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_put_back_with_an_older_time_or_saved_atomically_is_one_event() {
    let mut live = live().await;
    let put_back = |live: &Live| {
        live.write("file.css", "a { color: blue }");
        let last_year = filetime::FileTime::from_unix_time(1_700_000_000, 0);
        filetime::set_file_mtime(live.path("file.css"), last_year).expect("set mtime");
    };
    let saved = |live: &Live| {
        live.write("file.css.tmp-4711", "a { color: green }");
        std::fs::rename(live.path("file.css.tmp-4711"), live.path("file.css")).expect("rename");
    };
    live.write("file.css", "a { color: red }");
    live.expect_one_css_event("file.css").await;
    for change in [put_back, saved] {
        change(&live);
        live.expect_one_css_event("file.css").await;
    }
}

/// inotify reports each open, which is no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_or_serving_a_file_announces_nothing() {
    let mut live = live().await;
    live.write("read.css", "a { color: red }");
    live.expect_one_css_event("read.css").await;
    live.write("read.html", "<h1>read</h1>");
    assert_eq!(live.stream.event(EVENT).await.0, "morph");
    for _ in 0..3 {
        let content = std::fs::read_to_string(live.path("read.css")).expect("read");
        assert_eq!(content, "a { color: red }");
    }
    let event = live.stream.next_within(QUIET).await;
    assert_eq!(event, None, "reading is no change");
    for path in ["/static/read.css", "/static/read.html", "/static/read.css"] {
        assert_eq!(http::get(live.addr, path).await.expect("GET").status, 200);
    }
    let event = live.stream.next_within(QUIET).await;
    assert_eq!(event, None, "serving is no change");
}
