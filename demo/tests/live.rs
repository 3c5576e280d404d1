//! Live static files: a change in the watched directory reaches the reload stream
//! as the right event, once per burst; build tools can trigger the same by `POST`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum_autoreload::AutoReload;
use common::{request, EventStream};

struct Live {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The library's pieces in this process: `dir` served at `/static` and watched.
async fn live() -> Live {
    let dir = tempfile::tempdir().expect("tempdir");
    let reload = AutoReload::builder().enabled(true).build();
    axum_autoreload::watch_static(dir.path(), "/static", &reload).expect("watch");
    let app = Router::new()
        .nest_service("/static", axum_autoreload::static_files(dir.path()))
        .merge(reload.router())
        .layer(reload.layer());
    let addr = common::serve_here(app, reload).await;
    Live { addr, _dir: dir }
}

impl Live {
    fn dir(&self) -> &Path {
        self._dir.path()
    }

    async fn stream(&self) -> EventStream {
        let mut stream = EventStream::open(self.addr).await.expect("open");
        assert_eq!(
            stream.next_event().await.expect("read").expect("hello").0,
            "hello"
        );
        stream
    }
}

/// The next event within `limit`, or `None`.
async fn next_within(stream: &mut EventStream, limit: Duration) -> Option<(String, String)> {
    tokio::time::timeout(limit, stream.next_event())
        .await
        .ok()?
        .expect("read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_file_gives_its_event_within_500_ms() {
    let live = live().await;
    let mut stream = live.stream().await;
    std::fs::create_dir(live.dir().join("img")).expect("mkdir");
    tokio::time::sleep(Duration::from_millis(100)).await; // the directory is watched too
    for (file, body, expected) in [
        ("app.css", "body { color: red }", ("css", "/static/app.css")),
        (
            "img/logo.png",
            "not really a png",
            ("image", "/static/img/logo.png"),
        ),
        ("page.html", "<h1>hi</h1>", ("reload", "")),
    ] {
        let written = Instant::now();
        std::fs::write(live.dir().join(file), body).expect("write");
        let (name, data) = next_within(&mut stream, Duration::from_millis(500))
            .await
            .unwrap_or_else(|| panic!("no event for {file} within 500 ms"));
        eprintln!("{file}: {name} after {} ms", written.elapsed().as_millis());
        assert_eq!(name, expected.0, "{file}");
        if !expected.1.is_empty() {
            assert_eq!(data, expected.1, "{file}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_is_one_event_and_an_empty_file_none() {
    let live = live().await;
    let mut stream = live.stream().await;
    let path = live.dir().join("burst.css");
    for i in 0..20 {
        std::fs::write(&path, format!("body {{ margin: {i}px }}")).expect("write");
    }
    let first = next_within(&mut stream, Duration::from_millis(500))
        .await
        .expect("an event");
    assert_eq!(first, ("css".to_owned(), "/static/burst.css".to_owned()));
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(300)).await,
        None,
        "one event for the burst"
    );

    // Caught half-written (tailwind empties its output first): nothing, then the
    // write that fills it.
    std::fs::write(&path, "").expect("truncate");
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(300)).await,
        None,
        "an empty sheet is not announced"
    );
    std::fs::write(&path, "body { margin: 0 }").expect("write");
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(500)).await,
        Some(("css".to_owned(), "/static/burst.css".to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_tools_trigger_by_post_and_other_sites_cannot() {
    let live = live().await;
    let mut stream = live.stream().await;
    let port = live.addr.port();
    let post = |query: &str, origin: &str| {
        format!(
            "POST /auto_refresh/reload{query} HTTP/1.1\r\nHost: localhost:{port}\r\n{origin}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    };

    let css = request(live.addr, &post("?path=/static/out.css", ""))
        .await
        .expect("POST");
    assert_eq!((css.status, css.text().as_str()), (200, "{\"streams\":1}"));
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(500)).await,
        Some(("css".to_owned(), "/static/out.css".to_owned()))
    );

    let own = format!("Origin: http://localhost:{port}\r\n");
    let all = request(live.addr, &post("", &own)).await.expect("POST");
    assert_eq!(all.status, 200);
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(500))
            .await
            .map(|e| e.0)
            .as_deref(),
        Some("reload")
    );

    let foreign = request(live.addr, &post("", "Origin: https://evil.example\r\n"))
        .await
        .expect("POST");
    assert_eq!(foreign.status, 403);
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(300)).await,
        None,
        "nothing sent"
    );
}

/// Assert that the stream says, once, within 500 ms, that the stylesheet `file`
/// changed.
async fn expect_one_css_event(stream: &mut EventStream, file: &str) {
    assert_eq!(
        next_within(stream, Duration::from_millis(500)).await,
        Some(("css".to_owned(), format!("/static/{file}"))),
        "{file}"
    );
    assert_eq!(
        next_within(stream, Duration::from_millis(200)).await,
        None,
        "one event for {file}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_right_after_watching_begins_is_announced() {
    // Files are stamped from the kernel's coarse clock, a tick behind the clock a
    // program reads: a write in the first tick looks older than the watch.
    let dir = tempfile::tempdir().expect("tempdir");
    let reload = AutoReload::builder().enabled(true).build();
    let app = axum::Router::new().merge(reload.router());
    let addr = common::serve_here(app, reload.clone()).await;
    let mut stream = EventStream::open(addr).await.expect("open");
    assert_eq!(
        stream.next_event().await.expect("read").expect("hello").0,
        "hello"
    );
    axum_autoreload::watch_static(dir.path(), "/static", &reload).expect("watch");
    std::fs::write(dir.path().join("first.css"), "a { color: red }").expect("write");
    expect_one_css_event(&mut stream, "first.css").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_put_back_with_an_older_modification_time_is_announced() {
    let live = live().await;
    let mut stream = live.stream().await;
    let path = live.dir().join("restored.css");
    std::fs::write(&path, "a { color: red }").expect("write");
    expect_one_css_event(&mut stream, "restored.css").await;

    // `cp -p`, `rsync -a`: the content changes, the time goes back.
    std::fs::write(&path, "a { color: blue }").expect("write");
    let last_year = filetime::FileTime::from_unix_time(1_700_000_000, 0);
    filetime::set_file_mtime(&path, last_year).expect("set mtime");
    expect_one_css_event(&mut stream, "restored.css").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomic_save_is_one_event_for_the_file_itself() {
    let live = live().await;
    let mut stream = live.stream().await;
    let path = live.dir().join("saved.css");
    std::fs::write(&path, "a { color: red }").expect("write");
    expect_one_css_event(&mut stream, "saved.css").await;

    // What editors do: write a temporary file beside it, rename it over the file.
    let temporary = live.dir().join("saved.css.tmp-4711");
    std::fs::write(&temporary, "a { color: blue }").expect("write");
    std::fs::rename(&temporary, &path).expect("rename");
    expect_one_css_event(&mut stream, "saved.css").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_and_reading_a_file_announces_nothing() {
    let live = live().await;
    let mut stream = live.stream().await;
    let path = live.dir().join("read.css");
    std::fs::write(&path, "a { color: red }").expect("write");
    expect_one_css_event(&mut stream, "read.css").await;
    for _ in 0..3 {
        let mut content = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::open(&path).expect("open"), &mut content)
            .expect("read");
        assert_eq!(content, "a { color: red }");
    }
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(300)).await,
        None,
        "opening and reading is no change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_a_file_announces_nothing() {
    let live = live().await;
    std::fs::write(live.dir().join("read.css"), "a { color: red }").expect("write");
    std::fs::write(live.dir().join("read.html"), "<h1>read</h1>").expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await; // let those writes settle
    let mut stream = live.stream().await;
    for path in ["/static/read.css", "/static/read.html", "/static/read.css"] {
        assert_eq!(common::get(live.addr, path).await.expect("GET").status, 200);
    }
    assert_eq!(
        next_within(&mut stream, Duration::from_millis(300)).await,
        None,
        "serving files is no change (inotify reports each open)"
    );
}
