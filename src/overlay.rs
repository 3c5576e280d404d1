//! Failure reports: an instance whose reload streams open with an `overlay` event.
//!
//! A tool that serves the socket in place of an app that could not run (a runner
//! whose `cargo build` failed, or whose app exited on its own) builds its
//! [`AutoReload`](crate::AutoReload) with [`AutoReloadBuilder::overlay`]. Every reload stream
//! of that instance then opens with an `overlay` event, whose data is an HTML
//! fragment, right before its `hello`. The client script shows the fragment above
//! the page the tab already has (the page stays underneath) and does not reload onto
//! the instance that sent it; the `hello` of the next instance without an overlay
//! (the fixed app) reloads the tab as usual, which takes the overlay away.

use bytes::Bytes;

use crate::{sse, AutoReloadBuilder};

/// Name of the event that carries a failure report (see
/// [`AutoReloadBuilder::overlay`]).
pub const OVERLAY_EVENT: &str = "overlay";

/// A failure report, encoded once as the `overlay` event every stream opens with.
#[derive(Debug, Clone)]
pub(crate) struct Overlay(Bytes);

impl Overlay {
    /// The encoded `overlay` event.
    pub(crate) fn frame(&self) -> &Bytes {
        &self.0
    }
}

impl AutoReloadBuilder {
    /// Make this instance a failure report: every reload stream opens with an
    /// `overlay` event whose data is `html`, sent before the stream's `hello` (one
    /// `data:` line per line of `html`, as the WHATWG HTML spec's server-sent events
    /// carry multi-line data).
    ///
    /// Each open tab shows `html` in a full-viewport overlay above its current page
    /// (styles isolated in a shadow root; scrollable; with a dismiss button), marks
    /// `<html data-autoreload="failed">`, and stays on its page: it does not reload
    /// onto this instance. A page served by this instance itself (the script tag
    /// then carries `data-overlay`) is taken to show the report already, and gets no
    /// overlay. The next instance built without an overlay reloads every tab, which
    /// clears it.
    ///
    /// `html` is inserted as markup: escape whatever it quotes (compiler output, a
    /// panic message). It may carry its own `<style>`; inside the overlay it applies
    /// to the fragment only.
    ///
    /// # Examples
    ///
    /// ```
    /// let report = axum_autoreload::AutoReload::builder()
    ///     .enabled(true)
    ///     .overlay("<h1>Build failed</h1><pre>error[E0425]: cannot find value `x`</pre>")
    ///     .build();
    /// assert!(report.script_tag().contains(" data-overlay"));
    /// ```
    pub fn overlay(mut self, html: impl AsRef<str>) -> Self {
        self.overlay = Some(Overlay(sse::encode(OVERLAY_EVENT, html.as_ref(), None)));
        self
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tower::ServiceExt;

    use crate::AutoReload;

    #[tokio::test]
    async fn a_report_stream_opens_with_the_overlay_then_hello() {
        let reload = AutoReload::builder()
            .enabled(true)
            .overlay("<p>one</p>\n<p>two</p>")
            .build();
        let request = http::Request::get(crate::STREAM_PATH)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = reload.router::<()>().oneshot(request).await;
        let mut stream = response.expect("infallible").into_body().into_data_stream();
        let first = stream.next().await.expect("first frame").expect("bytes");
        let text = std::str::from_utf8(&first).expect("utf-8");
        let hello = format!("event: hello\ndata: {}\n", reload.instance_id());
        assert!(
            text.starts_with("event: overlay\ndata: <p>one</p>\ndata: <p>two</p>\n\n"),
            "{text}"
        );
        assert!(text.contains(&hello), "{text}");
        assert!(
            reload.script_tag().contains(" data-overlay"),
            "the pages of a report say so"
        );
    }
}
