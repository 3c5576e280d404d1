//! A handler that panics: a 500 page that says what and where, with the client
//! script, while reload is on; a plain 500 while it is off. The server goes on.

#[path = "demo/support.rs"]
mod demo;

use axum::{response::Html, routing::get, Router};
use axum_autoreload::AutoReload;
use dev_support::http;

/// Serves an app whose `/boom` panics, with reload on or off; `GET /boom`'s
/// answer after checking that the server goes on.
async fn boom(enabled: bool) -> http::Response {
    let reload = AutoReload::builder().enabled(enabled).build();
    let boom = || async {
        let index: usize = "7".parse().expect("a number");
        let empty: Vec<u8> = Vec::new();
        Html(format!("{}", empty[index]))
    };
    let app = Router::new()
        .route("/", get(|| async { Html("<h1>fine</h1>") }))
        .route("/boom", get(boom))
        .layer(reload.layer());
    let addr = demo::serve_here(app, reload).await;
    let page = http::get(addr, "/boom").await.expect("GET /boom");
    assert_eq!(page.status, 500);
    let next = http::get(addr, "/").await.expect("GET /");
    assert_eq!(next.status, 200, "the server goes on");
    page
}

#[tokio::test]
async fn a_panic_in_development_shows_its_message_and_location_and_reloads() {
    let body = boom(true).await.text();
    let location = format!("tests/panic.rs:{}:", line_of("empty[index]"));
    let message = "index out of bounds: the len is 0 but the index is 7";
    demo::assert_contains(&body, &[message, &location, "/auto_refresh/client.js"]);
    assert_eq!(body.matches("<script").count(), 1, "{body}");
}

#[tokio::test]
async fn a_panic_with_reload_off_is_a_plain_500() {
    let body = boom(false).await.text();
    assert!(!body.contains("index out of bounds"), "no detail: {body}");
    assert!(!body.contains("panic.rs"), "no location: {body}");
    assert!(!body.contains("<script"), "no script: {body}");
}

/// The line of this file that holds `needle`, counted from 1.
fn line_of(needle: &str) -> usize {
    include_str!("panic.rs")
        .lines()
        .position(|line| line.contains(needle) && !line.contains("line_of"))
        .expect("needle in this file")
        + 1
}
