//! A handler that panics: a 500 page that says what and where, with the client
//! script, while reload is on; a plain 500 while it is off. The server goes on.

mod common;

use std::net::SocketAddr;

use axum::{routing::get, Router};
use axum_autoreload::AutoReload;

/// Serve an app whose `/boom` panics, with reload on or off.
async fn app_with_a_panicking_handler(enabled: bool) -> SocketAddr {
    let reload = AutoReload::builder().enabled(enabled).build();
    let app = Router::new()
        .route("/", get(|| async { axum::response::Html("<h1>fine</h1>") }))
        .route(
            "/boom",
            get(|| async {
                let index: usize = "7".parse().expect("a number");
                let empty: Vec<u8> = Vec::new();
                axum::response::Html(format!("{}", empty[index]))
            }),
        )
        .merge(reload.router())
        .layer(reload.layer());
    let addr = common::serve_here(app, reload).await;
    addr
}

#[tokio::test]
async fn a_panic_in_development_shows_its_message_and_location_and_reloads() {
    let addr = app_with_a_panicking_handler(true).await;
    let page = common::get(addr, "/boom").await.expect("GET /boom");
    assert_eq!(page.status, 500);
    let body = page.text();
    assert!(
        body.contains("index out of bounds: the len is 0 but the index is 7"),
        "{body}"
    );
    let line = line_of("empty[index]");
    assert!(
        body.contains(&format!("tests/panic.rs:{line}:")),
        "location tests/panic.rs:{line} in {body}"
    );
    assert!(
        body.contains("/auto_refresh/client.js"),
        "client script in {body}"
    );
    assert_eq!(
        body.matches("<script").count(),
        1,
        "one script tag in {body}"
    );
    let next = common::get(addr, "/").await.expect("GET /");
    assert_eq!(next.status, 200, "the server goes on");
}

#[tokio::test]
async fn a_panic_with_reload_off_is_a_plain_500() {
    let addr = app_with_a_panicking_handler(false).await;
    let page = common::get(addr, "/boom").await.expect("GET /boom");
    assert_eq!(page.status, 500);
    let body = page.text();
    assert!(!body.contains("index out of bounds"), "no detail: {body}");
    assert!(!body.contains("panic.rs"), "no location: {body}");
    assert!(!body.contains("<script"), "no script: {body}");
    assert_eq!(common::get(addr, "/").await.expect("GET /").status, 200);
}

/// The line of this file that holds `needle`, counted from 1.
fn line_of(needle: &str) -> usize {
    include_str!("panic.rs")
        .lines()
        .position(|line| line.contains(needle) && !line.contains("line_of"))
        .expect("needle in this file")
        + 1
}
