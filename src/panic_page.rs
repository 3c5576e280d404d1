//! A handler that panics gets an answer: in development a 500 page that says what
//! panicked and where, with the client script, so the tab reloads once the fix is
//! built; with reload off (release builds) a plain 500. Either way the connection
//! and the server live on.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Once;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use maud::{html, PreEscaped, DOCTYPE};
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

use crate::AutoReload;

thread_local! {
    /// Where the last panic on this thread happened (`file:line:col`), recorded by
    /// the panic hook: the payload that `catch_unwind` returns carries only the
    /// message.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Record each panic's location for [`PanicPage`], then run the hook that was
/// there before (the default one prints the panic to stderr as usual).
fn install_location_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()));
            LOCATION.with(|last| *last.borrow_mut() = location);
            previous(info);
        }));
    });
}

/// The layer that turns a panic in a handler (or a layer inside it) into a 500
/// response; see [`PanicPage`]. [`crate::serve()`] applies it to the whole app;
/// with another server, add it outside [`AutoReload::layer`]:
/// `.layer(reload.layer()).layer(axum_autoreload::catch_panic(&reload))`.
///
/// With reload on, this installs a panic hook once per process that records where
/// each panic happened and then calls the hook that was installed before it.
pub fn catch_panic(reload: &AutoReload) -> CatchPanicLayer<PanicPage> {
    let detail = reload.is_enabled();
    if detail {
        install_location_hook();
    }
    CatchPanicLayer::custom(PanicPage {
        script_tag: detail
            .then(|| bytes::Bytes::copy_from_slice(AsRef::<[u8]>::as_ref(reload.script_tag()))),
    })
}

/// The response to a panic: with reload on, an HTML page (status 500) with the
/// panic message, its `file:line:col` and the client script, so the tab reloads
/// when the next build serves; with reload off, a plain `500 Internal Server
/// Error` with no detail.
#[derive(Clone, Debug)]
pub struct PanicPage {
    /// The client script's tag, or `None` for a plain 500.
    script_tag: Option<bytes::Bytes>,
}

impl ResponseForPanic for PanicPage {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
        let location = LOCATION.with(|last| last.borrow_mut().take());
        let Some(script_tag) = &self.script_tag else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let message = panic_text(&*payload);
        let location = location.unwrap_or_else(|| "(unknown location)".to_owned());
        let page = html! {
            (DOCTYPE)
            html lang="en" data-autoreload-error="panic" {
                head {
                    meta charset="utf-8";
                    title { "500 · handler panicked" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    h1 { "A handler panicked" }
                    p class="location" { "at " code { (location) } }
                    pre class="message" { (message) }
                    p class="hint" { "This tab reloads when the next build serves." }
                    (PreEscaped(String::from_utf8_lossy(script_tag)))
                }
            }
        };
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CACHE_CONTROL, "no-store")],
            page,
        )
            .into_response()
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#222}\
h1{color:#b00020;font-size:1.4rem}\
pre{background:#1e1e1e;color:#eee;padding:1rem;border-radius:6px;white-space:pre-wrap}\
.hint{color:#666}";

/// A panic's message: its payload when that is text (`panic!` always gives text).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a panic payload that is not text)"
    }
}
