use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::splice::Splicer;
use crate::shutdown::ShutdownSignal;

pin_project! {
    /// The response body of [`super::InjectService`]: the inner body, with the
    /// script spliced in as it streams when the response is a page that qualified,
    /// or ended at the shutdown when it is an event stream; or the layer's own
    /// answer on a reload path.
    #[derive(Debug)]
    #[must_use = "a body does nothing until it is polled"]
    pub struct InjectBody<B> {
        #[pin]
        inner: Inner<B>,
        splicer: Option<Splicer>,
        // A frame to send before the next of the inner body: a trailers frame that
        // waits for the held-back bytes and the tag to go out, or the `retry`
        // field that starts an event stream.
        pending: Option<Frame<Bytes>>,
        // An event stream's end, made once (making it anew registers a new waiter);
        // polled once per frame of an app's event stream, never for other bodies.
        shutdown: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
        ended: bool,
    }
}

pin_project! {
    #[project = InnerProj]
    #[derive(Debug)]
    enum Inner<B> {
        App { #[pin] body: B },
        // Never fails: its bytes are in memory, or the reload stream's.
        ReloadPath { body: axum::body::Body },
    }
}

impl<B> Inner<B>
where
    B: Body<Data = Bytes>,
{
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project() {
            InnerProj::App { body } => body.poll_frame(cx),
            InnerProj::ReloadPath { body } => match ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
                Some(Err(err)) => {
                    tracing::debug!("reload path: {err}");
                    Poll::Ready(None)
                }
                None => Poll::Ready(None),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::App { body } => body.is_end_stream(),
            Self::ReloadPath { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::App { body } => body.size_hint(),
            Self::ReloadPath { body } => body.size_hint(),
        }
    }
}

impl<B> InjectBody<B> {
    fn new(inner: B) -> Self {
        Self::with(Inner::App { body: inner })
    }

    fn with(inner: Inner<B>) -> Self {
        Self {
            inner,
            splicer: None,
            pending: None,
            shutdown: None,
            ended: false,
        }
    }

    /// The layer's answer on a reload path.
    pub(super) fn reload_path(body: axum::body::Body) -> Self {
        Self::with(Inner::ReloadPath { body })
    }

    pub(super) fn passthrough(inner: B) -> Self {
        Self::new(inner)
    }

    pub(super) fn injecting(inner: B, splicer: Splicer) -> Self {
        Self {
            splicer: Some(splicer),
            ..Self::new(inner)
        }
    }

    /// An event stream that ends at the shutdown, and starts with `retry` (a
    /// `retry:` field block) when there is one.
    pub(super) fn until_shutdown(
        inner: B,
        shutdown: &ShutdownSignal,
        retry: Option<Bytes>,
    ) -> Self {
        Self {
            shutdown: Some(Box::pin(shutdown.triggered_future())),
            pending: retry.map(Frame::data),
            ..Self::new(inner)
        }
    }
}

impl<B> Body for InjectBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        if let Some(shutdown) = this.shutdown.as_mut() {
            if shutdown.as_mut().poll(cx).is_ready() {
                // Between two frames: the stream ends cleanly, and the client
                // reconnects to the next process.
                *this.ended = true;
                *this.shutdown = None;
                return Poll::Ready(None);
            }
        }
        if let Some(frame) = this.pending.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let Some(splicer) = this.splicer.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        loop {
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = splicer.push(data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(trailers) => {
                        let out = splicer.finish();
                        *this.splicer = None;
                        if out.is_empty() {
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        *this.pending = Some(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => {
                    let out = splicer.finish();
                    *this.splicer = None;
                    return Poll::Ready((!out.is_empty()).then(|| Ok(Frame::data(out))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
            || (self.splicer.is_none() && self.pending.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            return SizeHint::with_exact(0);
        }
        let inner = self.inner.size_hint();
        let Some(splicer) = &self.splicer else {
            return inner;
        };
        let extra = splicer.remaining_len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + extra);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}
