//! The demo's page layout, its home page and its 404 page.

use axum::extract::State;
use axum::http::StatusCode;
use axum_autoreload::AutoReload;
use maud::{html, Markup, DOCTYPE};

/// The page title; edit it while the demo runs under watchexec to watch every tab
/// reload.
const TITLE: &str = "axum-autoreload demo";

/// A whole page: `title`, the stylesheet, `head` (scripts, meta tags) and `body`.
pub(crate) fn layout(title: &str, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/style.css";
                (head)
            }
            body { (body) }
        }
    }
}

/// The header of every page but the home page: its title and a link home.
pub(crate) fn header(title: &str) -> Markup {
    html! {
        header {
            nav { a href="/" { "← " (TITLE) } }
            h1 { (title) }
        }
    }
}

/// `GET /`: the home page.
pub(crate) async fn home(State(reload): State<AutoReload>) -> Markup {
    layout(
        TITLE,
        html! {},
        html! {
            header { h1 { (TITLE) } }
            main {
                p {
                    "Edit the title in " code { "demo/src/app/pages.rs" }
                    " and save: the app is rebuilt and swapped on the same socket, and this tab updates in place."
                }
                ul.demos {
                    li {
                        a href="/posts" { "Live feed" }
                        ": post a message and watch every open feed tab show it at once (htmx, server-sent events, SQLite)."
                    }
                    li {
                        a href="/echo" { "WebSocket echo" }
                        ": send text or bytes and get them back; the socket reconnects by itself after a restart."
                    }
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
            html! {},
            html! { h1 { "Not found" } p { a href="/" { "Home" } } },
        ),
    )
}
