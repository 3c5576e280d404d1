use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

use super::predicate::has_media_type;
use super::{AutoReloadBody, AutoReloadLayer, Predicate, Splicer};
use crate::sse::CONTENT_TYPE as EVENT_STREAM;
use crate::{KeepStreamOpen, ShutdownSignal};

/// Marks a response the script went into, so an outer layer leaves it alone.
#[derive(Clone, Copy, Debug)]
struct Injected;

/// The service made by [`crate::AutoReloadLayer`].
#[derive(Clone, Debug)]
pub struct AutoReloadService<S, P> {
    inner: S,
    layer: AutoReloadLayer<P>,
}

impl<S, P> AutoReloadService<S, P> {
    pub(crate) fn new(inner: S, layer: AutoReloadLayer<P>) -> Self {
        Self { inner, layer }
    }
}

impl<S, P, ReqBody, ResBody> Service<Request<ReqBody>> for AutoReloadService<S, P>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    P: Predicate,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<AutoReloadBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let layer = &self.layer;
        request.extensions_mut().insert(layer.shutdown.clone());
        let inject = layer
            .script_tag
            .as_ref()
            .filter(|_| layer.predicate.request(&request))
            .map(|tag| (tag.clone(), layer.predicate.clone()));
        let head = request.method() == Method::HEAD;
        ResponseFuture {
            inner: self.inner.call(request),
            shutdown: layer.shutdown.clone(),
            retry: layer.retry.clone(),
            inject,
            head,
        }
    }
}

pin_project! {
    /// The response future of [`AutoReloadService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F, P> {
        #[pin]
        inner: F,
        shutdown: ShutdownSignal,
        // The `retry` field for the app's event streams, when reload is on.
        retry: Option<Bytes>,
        // The tag and the predicate, or `None` when reload is off or the request
        // rules injection out.
        inject: Option<(Bytes, P)>,
        // A HEAD request: the headers change as for GET, the (empty) body does not.
        head: bool,
    }
}

impl<F, P, ResBody, E> Future for ResponseFuture<F, P>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    P: Predicate,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<AutoReloadBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if ends_at_shutdown(&response) {
            let shutdown = &*this.shutdown;
            let retry = this.retry.take();
            return Poll::Ready(Ok(
                response.map(|body| AutoReloadBody::until_shutdown(body, shutdown, retry))
            ));
        }
        let tag = this.inject.take().and_then(|(tag, predicate)| {
            (can_inject(&response) && predicate.response(&response)).then_some(tag)
        });
        let Some(tag) = tag else {
            return Poll::Ready(Ok(response.map(AutoReloadBody::passthrough)));
        };
        response.extensions_mut().insert(Injected);
        let headers = response.headers_mut();
        grow_content_length(headers, tag.len());
        // The body now names this process: a validator of the file it came from
        // would let the browser reuse a page that names an older one (a 304 after
        // each reload, and a reload loop).
        headers.remove(header::ETAG);
        headers.remove(header::LAST_MODIFIED);
        if *this.head {
            return Poll::Ready(Ok(response.map(AutoReloadBody::passthrough)));
        }
        Poll::Ready(Ok(
            response.map(|body| AutoReloadBody::injecting(body, Splicer::new(tag)))
        ))
    }
}

/// An event stream of unknown length that did not opt out with [`KeepStreamOpen`].
fn ends_at_shutdown<B: http_body::Body>(response: &Response<B>) -> bool {
    has_media_type(response.headers(), EVENT_STREAM)
        && response.body().size_hint().exact().is_none()
        && response.extensions().get::<KeepStreamOpen>().is_none()
}

/// What the layer can rewrite, whatever the predicate says.
fn can_inject<B>(response: &Response<B>) -> bool {
    let status = response.status();
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED)
        && response.extensions().get::<Injected>().is_none()
        && is_identity_encoded(response.headers())
}

fn is_identity_encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .all(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.trim().is_empty() || v.trim().eq_ignore_ascii_case("identity"))
        })
}

/// Raise `Content-Length` by `extra` bytes; drop it when it cannot be read, so the
/// body goes out chunked rather than with a wrong length.
fn grow_content_length(headers: &mut HeaderMap, extra: usize) {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else {
        return;
    };
    let grown = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .and_then(|len| len.checked_add(extra as u64));
    match grown {
        Some(len) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
}
