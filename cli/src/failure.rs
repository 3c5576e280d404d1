//! The failure server: the runner serves the socket itself while there is no app
//! to run, until the next SIGINT.
//!
//! Built on the library's public API like any app: an [`AutoReload`] that is a
//! failure report ([`axum_autoreload::AutoReloadBuilder::overlay`]), its router and layer,
//! and [`axum_autoreload::serve()`], which brings the Host and Origin checks and
//! the graceful shutdown (every reload stream gets `restart` and ends). Open tabs
//! show the report above their page; a page load gets an error page (500) with
//! the report and the client script; any other request gets 503 and one line of
//! plain text.

use std::future::IntoFuture;
use std::io;

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use axum_autoreload::listener::Listener;
use axum_autoreload::AutoReload;

use crate::report::Report;
use crate::signals::Signals;

/// Serve `report` on `listener` until SIGINT or SIGTERM, then shut down as the
/// library does. Requests whose `Host` is neither local nor in `allowed_hosts`
/// get 403. Returns the signal that stopped it.
///
/// # Errors
///
/// When the socket cannot be registered with the runtime.
pub(crate) async fn serve(
    listener: Listener,
    report: Report,
    allowed_hosts: &[String],
    signals: &mut Signals,
) -> io::Result<nix::sys::signal::Signal> {
    let url = listener.url();
    let reload = allowed_hosts
        .iter()
        .fold(AutoReload::builder(), |builder, host| {
            builder.allow_host(host)
        })
        .enabled(true)
        .overlay(&report.fragment)
        .build();
    let app = Router::new()
        .fallback(move |request: Request| std::future::ready(answer(&report, &request)))
        .merge(reload.router())
        .layer(reload.layer());
    let shutdown = reload.shutdown_signal();
    // The runner owns the signals, from before the build on; the shutdown is the
    // library's.
    let server = axum_autoreload::serve(listener.into_tokio()?, app, reload).handle_signals(false);
    let mut server = std::pin::pin!(server.into_future());
    tracing::info!("showing the failure on {url} until the next change");
    let signal = tokio::select! {
        served = &mut server => {
            served?;
            return Err(io::Error::other("the failure server stopped by itself"));
        }
        signal = signals.recv() => signal,
    };
    shutdown.trigger();
    server.await?;
    Ok(signal)
}

/// A page load gets the error page, anything else a 503 with one line of text.
fn answer(report: &Report, request: &Request) -> Response {
    if is_page_load(request.method(), request.headers()) {
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

/// A GET or HEAD whose `Accept` takes `text/html`: what a browser sends for a page.
fn is_page_load(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|media| media.split(';').next().map(str::trim) == Some("text/html"))
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
