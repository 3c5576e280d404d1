//! The demo's HTML pages.

use axum::extract::State;
use axum::http::StatusCode;
use axum_autoreload::AutoReload;
use maud::{html, Markup, DOCTYPE};

/// The page title; edit it while the demo runs under watchexec to watch every tab
/// reload.
const TITLE: &str = "axum-autoreload demo";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/style.css";
            }
            body { (body) }
        }
    }
}

/// `GET /`: the home page.
pub(crate) async fn home(State(reload): State<AutoReload>) -> Markup {
    layout(
        TITLE,
        html! {
            header { h1 { (TITLE) } }
            main {
                p {
                    "Edit the title in " code { "src/demo/pages.rs" }
                    " and save: the server restarts on the same socket and this tab reloads by itself."
                }
                p.instance {
                    "Served by instance " code #instance { (reload.instance_id()) }
                    ", auto-reload " (if reload.is_enabled() { "on" } else { "off" }) "."
                }
            }
        },
    )
}

/// Every other path: a 404 page (HTML, so it reloads too).
pub(crate) async fn not_found() -> (StatusCode, Markup) {
    (
        StatusCode::NOT_FOUND,
        layout(
            "Not found",
            html! { h1 { "Not found" } p { a href="/" { "Home" } } },
        ),
    )
}
