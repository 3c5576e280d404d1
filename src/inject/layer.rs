use axum::Router;
use bytes::Bytes;

use super::predicate::{HtmlPages, Predicate};
use crate::shutdown::ShutdownSignal;

/// Answers the reload paths, adds the client script to HTML pages, ends the app's
/// event streams at shutdown and hands handlers the shutdown signal; see the
/// [module docs](crate::inject) for when it does each.
///
/// Made by [`crate::AutoReload::layer`]. Holds only configuration: the script tag
/// and the reload paths' router (none when reload is off), the shutdown signal and
/// the [`Predicate`] that picks the pages.
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it is applied"]
pub struct InjectLayer<P = HtmlPages> {
    pub(super) script_tag: Option<Bytes>,
    /// The `retry` field put first in the app's event streams (none when reload
    /// is off).
    pub(super) retry: Option<Bytes>,
    /// The reload paths, answered ahead of the app (none when reload is off).
    pub(super) routes: Option<Router>,
    pub(super) shutdown: ShutdownSignal,
    pub(super) predicate: P,
}

impl InjectLayer {
    /// A layer that answers the reload paths with `routes` and injects
    /// `script_tag` (both `None`: reload is off), and ends event streams on
    /// `shutdown`.
    pub(crate) fn new(
        script_tag: Option<&str>,
        routes: Option<Router>,
        shutdown: ShutdownSignal,
    ) -> Self {
        Self {
            script_tag: script_tag.map(|tag| Bytes::copy_from_slice(tag.as_bytes())),
            retry: script_tag.map(|_| crate::sse::app_stream_retry()),
            routes,
            shutdown,
            predicate: HtmlPages,
        }
    }
}

impl<P> InjectLayer<P> {
    /// Choose which responses get the script, instead of [`HtmlPages`]. The layer
    /// still leaves alone what it cannot rewrite (compressed bodies, statuses
    /// without a body, pages that have the script already).
    ///
    /// A closure `Fn(StatusCode, &HeaderMap) -> bool` is a predicate too: it is
    /// asked about each response's status and headers (every request qualifies).
    ///
    /// # Examples
    ///
    /// HTML and XHTML pages:
    ///
    /// ```
    /// use axum_autoreload::AutoReload;
    /// use http::{header, HeaderMap, StatusCode};
    ///
    /// let reload = AutoReload::new();
    /// let layer = reload.layer().inject_when(|_status: StatusCode, headers: &HeaderMap| {
    ///     headers.get(header::CONTENT_TYPE).is_some_and(|value| {
    ///         value.as_bytes().starts_with(b"text/html")
    ///             || value.as_bytes().starts_with(b"application/xhtml+xml")
    ///     })
    /// });
    /// ```
    ///
    /// The default pages, less those under `/embed`, with a [`Predicate`] of one's
    /// own:
    ///
    /// ```
    /// use axum_autoreload::inject::{HtmlPages, Predicate};
    /// use axum_autoreload::AutoReload;
    /// use http::{Request, Response};
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
    ///     }
    /// }
    ///
    /// let reload = AutoReload::new();
    /// let layer = reload.layer().inject_when(Pages);
    /// ```
    pub fn inject_when<Q: Predicate>(self, predicate: Q) -> InjectLayer<Q> {
        InjectLayer {
            script_tag: self.script_tag,
            retry: self.retry,
            routes: self.routes,
            shutdown: self.shutdown,
            predicate,
        }
    }
}
