//! The panic page ([`PanicPageLayer`]): a handler that panics gets an answer: in development a 500 page that says what
//! panicked and where, with the client script, so the tab reloads once the fix is
//! built; with reload off (release builds) a plain 500. Either way the connection
//! and the server live on.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::BoxError;
use bytes::Bytes;
use http::{header, Request, StatusCode};
use maud::{html, PreEscaped, DOCTYPE};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::catch_panic::{self, CatchPanic, CatchPanicLayer, ResponseForPanic};

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
/// response: with reload on, an HTML page (status 500) with the panic message, its
/// `file:line:col` and the client script, so the tab reloads when the next build
/// serves; with reload off, a plain `500 Internal Server Error` with no detail.
///
/// Made by [`crate::AutoReload::panic_page`]. [`crate::serve()`] applies it to the
/// whole app; with another server, add it outside [`crate::AutoReload::layer`]:
/// `.layer(reload.layer()).layer(reload.panic_page())`.
///
/// With reload on, it installs a panic hook once per process that records where
/// each panic happened and then calls the hook that was installed before it.
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it is applied"]
pub struct PanicPageLayer {
    inner: CatchPanicLayer<PanicPage>,
}

impl PanicPageLayer {
    /// Pages that carry `script_tag`, or a plain 500 when it is `None` (reload is
    /// off).
    pub(crate) fn new(script_tag: Option<&str>) -> Self {
        if script_tag.is_some() {
            install_location_hook();
        }
        Self {
            inner: CatchPanicLayer::custom(PanicPage {
                script_tag: script_tag.map(|tag| Bytes::copy_from_slice(tag.as_bytes())),
            }),
        }
    }
}

impl<S> Layer<S> for PanicPageLayer {
    type Service = PanicPageService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PanicPageService {
            inner: self.inner.layer(inner),
        }
    }
}

/// The service made by [`PanicPageLayer`]: calls the inner service and answers its
/// panics. Its responses have axum's [`Body`].
#[derive(Clone, Debug)]
#[must_use = "a service does nothing until it is called"]
pub struct PanicPageService<S> {
    inner: CatchPanic<S, PanicPage>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PanicPageService<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`PanicPageService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: catch_panic::ResponseFuture<F, PanicPage>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(response.map(Body::new)))
    }
}

/// The response to a panic (see [`PanicPageLayer`]).
#[derive(Clone, Debug)]
struct PanicPage {
    /// The client script's tag, or `None` for a plain 500.
    script_tag: Option<Bytes>,
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
