use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

use super::{InjectBody, Splicer};
use crate::AutoReload;

/// Marks a response the script went into, so an outer layer leaves it alone.
#[derive(Clone, Copy, Debug)]
struct Injected;

/// The service made by [`crate::InjectLayer`].
#[derive(Clone, Debug)]
pub struct InjectService<S> {
    inner: S,
    reload: AutoReload,
}

impl<S> InjectService<S> {
    pub(crate) fn new(inner: S, reload: AutoReload) -> Self {
        Self { inner, reload }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for InjectService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<InjectBody<ResBody>>;
    type Error = S::Error;
    type Future = InjectResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let wanted = self.reload.is_enabled() && !request.headers().contains_key("hx-request");
        let head = request.method() == Method::HEAD;
        InjectResponseFuture {
            inner: self.inner.call(request),
            tag: wanted.then(|| self.reload.shared.script_tag.clone()),
            head,
        }
    }
}

pin_project! {
    /// The response future of [`InjectService`].
    #[derive(Debug)]
    pub struct InjectResponseFuture<F> {
        #[pin]
        inner: F,
        // The tag to inject, or `None` when the request rules injection out.
        tag: Option<Bytes>,
        // A HEAD request: the headers change as for GET, the (empty) body does not.
        head: bool,
    }
}

impl<F, ResBody, E> Future for InjectResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<InjectBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let tag = this.tag.take().filter(|_| should_inject(&response));
        let Some(tag) = tag else {
            return Poll::Ready(Ok(response.map(InjectBody::passthrough)));
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
            return Poll::Ready(Ok(response.map(InjectBody::passthrough)));
        }
        Poll::Ready(Ok(
            response.map(|body| InjectBody::injecting(body, Splicer::new(tag)))
        ))
    }
}

fn should_inject<B>(response: &Response<B>) -> bool {
    let status = response.status();
    let headers = response.headers();
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED)
        && response.extensions().get::<Injected>().is_none()
        && is_html(headers)
        && is_identity_encoded(headers)
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/html"))
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
