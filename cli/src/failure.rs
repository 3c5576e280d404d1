//! The failure server: the runner serves the socket itself while there is no app
//! to run (the first build failed, or the app exited), until an app runs again.
//!
//! Built on the library's public API like any app: an [`AutoReload`] that is a
//! failure report ([`axum_autoreload::AutoReloadBuilder::overlay`]), served with
//! [`AutoReload::serve`], which brings the reload paths, the client script, the Host and Origin checks and
//! the graceful shutdown (every reload stream gets `restart` and ends). Open tabs
//! show the report above their page; a page load gets an error page (500) with
//! the report and the client script; an app's own event stream is held open with
//! a short `retry`; any other request gets 503 and one line of plain text.

use std::future::IntoFuture;
use std::io;
use std::os::fd::AsFd;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use axum_autoreload::listener::Listener;
use axum_autoreload::AutoReload;
use tokio::task::JoinHandle;

use crate::report::Report;

/// The `retry` an app's own `EventSource` gets here, milliseconds: it reconnects
/// this soon after the failure server ends its stream, to the fixed app.
const APP_STREAM_RETRY_MS: u64 = 250;

/// The failure server, serving a report on a duplicate of the listening socket.
#[derive(Debug)]
pub(crate) struct FailureServer {
    reload: AutoReload,
    task: JoinHandle<io::Result<()>>,
}

impl FailureServer {
    /// Serve `report` on `listener` until [`FailureServer::stop`]. Requests whose
    /// `Host` is neither local nor in `allowed_hosts` get 403.
    ///
    /// # Errors
    ///
    /// When the socket cannot be duplicated or registered with the runtime.
    pub(crate) fn start(
        listener: &Listener,
        report: Report,
        allowed_hosts: &[String],
    ) -> io::Result<Self> {
        let socket = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
        socket.set_nonblocking(true)?;
        let socket = tokio::net::TcpListener::from_std(socket)?;
        let reload = allowed_hosts
            .iter()
            .fold(AutoReload::builder(), |builder, host| {
                builder.allow_host(host)
            })
            .enabled(true)
            .overlay(&report.fragment)
            .build();
        let app = Router::new()
            .fallback(move |request: Request| std::future::ready(answer(&report, &request)));
        // The runner owns the signals; the shutdown is the library's.
        let server = reload.serve(socket, app).handle_signals(false);
        tracing::info!(
            "showing the failure on {} until the next change",
            listener.url()
        );
        Ok(Self {
            reload,
            task: tokio::spawn(server.into_future()),
        })
    }

    /// Tell every open tab that a build started.
    pub(crate) fn building(&self) {
        self.reload.building();
    }

    /// Shut down as the library does: every reload stream gets `restart` and ends.
    ///
    /// # Errors
    ///
    /// When the server failed.
    pub(crate) async fn stop(self) -> io::Result<()> {
        self.reload.shutdown_signal().trigger();
        self.task.await.map_err(io::Error::other)?
    }
}

/// A page load gets the error page; an app's own event stream is held open (see
/// [`held_event_stream`]); anything else gets a 503 with one line of text.
fn answer(report: &Report, request: &Request) -> Response {
    if accepts(request.headers(), "text/event-stream") {
        held_event_stream()
    } else if is_page_load(request.method(), request.headers()) {
        let mut response = (StatusCode::INTERNAL_SERVER_ERROR, Html(report.page())).into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!("{}; see the terminal or the browser\n", report.summary),
        )
            .into_response()
    }
}

/// An app's own `EventSource` (its `Accept` is `text/event-stream`): an error
/// status would close it for good (WHATWG HTML, server-sent events), so it gets a
/// stream that sends only a short `retry` and stays open until this server shuts
/// down, which ends it; the browser then reconnects to the fixed app.
fn held_event_stream() -> Response {
    let retry = format!("retry: {APP_STREAM_RETRY_MS}\n\n");
    let first = futures_util::stream::once(std::future::ready(Ok::<_, io::Error>(retry)));
    let body = Body::from_stream(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A GET or HEAD whose `Accept` takes `text/html`: what a browser sends for a page.
fn is_page_load(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD) && accepts(headers, "text/html")
}

/// Whether `Accept` names `media` (parameters aside).
fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|named| named.split(';').next().map(str::trim) == Some(media))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_loads_are_gets_that_take_html() {
        let headers = |accept: &str| {
            let mut map = HeaderMap::new();
            map.insert(header::ACCEPT, accept.parse().expect("a header value"));
            map
        };
        let browser = headers("text/html,application/xhtml+xml,*/*;q=0.8");
        assert!(is_page_load(&Method::GET, &browser));
        assert!(is_page_load(&Method::HEAD, &browser));
        assert!(!is_page_load(&Method::POST, &browser));
        assert!(!is_page_load(&Method::GET, &headers("application/json")));
        assert!(!is_page_load(&Method::GET, &HeaderMap::new()));
    }
}
