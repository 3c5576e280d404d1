//! Live-server mode: `axum-autoreload-demo --root DIR` serves a folder of HTML with
//! the client script, index pages, MIME types, a 404 page, and watches it.

#[path = "demo/support.rs"]
mod demo;

use std::time::Duration;

use dev_support::http::{get, send};
use dev_support::sse::EventStream;

const HOME: &str =
    "<!doctype html><html><head><link rel=stylesheet href=style.css></head><body><h1>Home</h1>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_and_watches_a_folder() {
    let site = tempfile::tempdir().expect("tempdir");
    let root = site.path();
    std::fs::create_dir(root.join("docs")).expect("mkdir");
    for (name, body) in [
        ("index.html", &format!("{HOME}</body></html>")[..]),
        ("docs/index.html", "<h1>Docs</h1>"),
        ("style.css", "h1 { color: red }"),
        ("logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ("data.json", "{\"a\":1}"),
        ("app.js", "console.log(1)"),
    ] {
        std::fs::write(root.join(name), body).expect("write");
    }
    let (addr, _server) = demo::serving(&["--root", root.to_str().expect("UTF-8")]).await;

    let home = get(addr, "/").await.expect("GET /");
    assert_eq!(home.status, 200);
    assert_eq!(home.header("content-type"), Some("text/html"));
    assert_eq!(home.header("cache-control"), Some("no-cache"));
    let text = home.text();
    let injected = format!("{HOME}<script async src=\"/auto_refresh/client.js");
    assert!(text.starts_with(&injected), "{text}");
    assert_eq!(text.matches("<script").count(), 1);
    let length = text.len().to_string();
    assert_eq!(home.header("content-length"), Some(length.as_str()));

    let head = send(addr, "HEAD /", "Host: localhost\r\n", "").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(length.as_str()));
    assert!(head.header("last-modified").is_none() && head.header("etag").is_none());

    let docs = get(addr, "/docs/").await.expect("GET /docs/");
    let injected = docs.text().starts_with("<h1>Docs</h1><script");
    assert!(docs.status == 200 && injected, "{docs:?}");
    let redirect = get(addr, "/docs").await.expect("GET /docs");
    assert!(matches!(redirect.status, 301 | 307 | 308), "{redirect:?}");
    assert_eq!(redirect.header("location"), Some("/docs/"));

    for (path, mime) in [
        ("/style.css", "text/css"),
        ("/logo.svg", "image/svg+xml"),
        ("/data.json", "application/json"),
        ("/app.js", "text/javascript"),
    ] {
        let response = get(addr, path).await.expect("GET");
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("content-type"), Some(mime), "{path}");
        let text = response.text();
        let injected = text.contains("src=\"/auto_refresh/client.js");
        assert!(!injected, "{path}: nothing injected");
    }

    let missing = get(addr, "/nope.html").await.expect("GET");
    assert_eq!(missing.status, 404);
    let text = missing.text();
    demo::assert_contains(&text, &["404 Not Found", "/auto_refresh/client.js"]);

    // Watched: a stylesheet edit is announced for a hot swap.
    let mut stream = EventStream::greeted(addr).await;
    std::fs::write(root.join("style.css"), "h1 { color: blue }").expect("write");
    let event = stream.event(Duration::from_secs(5)).await;
    assert_eq!(event, ("css".to_owned(), "/style.css".to_owned()));
}
