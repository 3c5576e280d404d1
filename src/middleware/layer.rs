use bytes::Bytes;
use tower::Layer;

use super::{AutoReloadService, HtmlPages, Predicate};
use crate::ShutdownSignal;

/// Adds the client script to HTML pages, ends the app's event streams at shutdown
/// and hands handlers the shutdown signal; see the module docs for when it does
/// each.
///
/// Made by [`crate::AutoReload::layer`]. Holds only configuration: the script tag
/// (none when reload is off), the shutdown signal and the [`Predicate`] that picks
/// the pages.
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it is applied"]
pub struct AutoReloadLayer<P = HtmlPages> {
    pub(super) script_tag: Option<Bytes>,
    /// The `retry` field put first in the app's event streams (none when reload
    /// is off).
    pub(super) retry: Option<Bytes>,
    pub(super) shutdown: ShutdownSignal,
    pub(super) predicate: P,
}

impl AutoReloadLayer {
    /// A layer that injects `script_tag` (none: reload is off) and ends event
    /// streams on `shutdown`.
    pub(crate) fn new(script_tag: Option<&str>, shutdown: ShutdownSignal) -> Self {
        Self {
            script_tag: script_tag.map(|tag| Bytes::copy_from_slice(tag.as_bytes())),
            retry: script_tag.map(|_| crate::sse::app_stream_retry()),
            shutdown,
            predicate: HtmlPages,
        }
    }
}

impl<P> AutoReloadLayer<P> {
    /// Choose which responses get the script, instead of [`HtmlPages`]. The layer
    /// still leaves alone what it cannot rewrite (compressed bodies, statuses
    /// without a body, pages that have the script already).
    ///
    /// # Examples
    ///
    /// XHTML pages too, and nothing under `/embed`:
    ///
    /// ```
    /// use axum_autoreload::{AutoReload, HtmlPages, Predicate};
    /// use http::{header, Request, Response};
    ///
    /// #[derive(Clone)]
    /// struct Pages;
    ///
    /// impl Predicate for Pages {
    ///     fn request<B>(&self, request: &Request<B>) -> bool {
    ///         HtmlPages.request(request) && !request.uri().path().starts_with("/embed")
    ///     }
    ///
    ///     fn response<B>(&self, response: &Response<B>) -> bool {
    ///         HtmlPages.response(response)
    ///             || response.headers().get(header::CONTENT_TYPE)
    ///                 .is_some_and(|value| value.as_bytes().starts_with(b"application/xhtml+xml"))
    ///     }
    /// }
    ///
    /// let reload = AutoReload::new();
    /// let layer = reload.layer().inject_when(Pages);
    /// ```
    pub fn inject_when<Q: Predicate>(self, predicate: Q) -> AutoReloadLayer<Q> {
        AutoReloadLayer {
            script_tag: self.script_tag,
            retry: self.retry,
            shutdown: self.shutdown,
            predicate,
        }
    }
}

impl<S, P: Clone> Layer<S> for AutoReloadLayer<P> {
    type Service = AutoReloadService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        AutoReloadService::new(inner, self.clone())
    }
}
