use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::routing::future::RouteFuture;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::body::InjectBody;
use super::layer::InjectLayer;
use super::predicate::{has_media_type, Predicate};
use super::splice::Splicer;
use crate::protocol::EVENT_STREAM_CONTENT_TYPE as EVENT_STREAM;
use crate::routes::is_reload_path;
use crate::shutdown::{KeepStreamOpen, ShutdownSignal};

/// Marks a response an `InjectLayer` handled, so an outer one leaves it alone;
/// with the inner layer's signal, on which the inner layer ends the app's event
/// streams. Only a nested layer (one whose request carried an outer layer's
/// signal) marks its responses: nothing else reads the mark.
#[derive(Clone, Debug)]
struct Handled {
    shutdown: ShutdownSignal,
}

/// The service made by [`InjectLayer`]: answers the reload paths, passes the
/// rest to the inner service and rewrites its responses as the
/// [module docs](crate::inject) say.
#[derive(Clone, Debug)]
#[must_use = "a service does nothing until it is called"]
pub struct InjectService<S, P> {
    inner: S,
    layer: InjectLayer<P>,
}

impl<S, P: Clone> Layer<S> for InjectLayer<P> {
    type Service = InjectService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectService {
            inner,
            layer: self.clone(),
        }
    }
}

impl<S, P, ReqBody, ResBody> Service<Request<ReqBody>> for InjectService<S, P>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    P: Predicate,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<InjectBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let layer = &self.layer;
        // An outer layer's signal (the server's) stays: it is the one that fires.
        let nested = request.extensions().get::<ShutdownSignal>().is_some();
        let handled = nested.then(|| Handled {
            shutdown: layer.shutdown.clone(),
        });
        if let Some(routes) = &layer.routes {
            if is_reload_path(request.uri().path()) {
                // No reload path reads the body: the router gets none, and the
                // request's body type is the app's business. A router is always
                // ready.
                let (parts, _body) = request.into_parts();
                let request = Request::from_parts(parts, axum::body::Body::empty());
                let answer = routes.clone().call(request);
                return ResponseFuture {
                    kind: Kind::Reload { answer, handled },
                };
            }
        }
        if !nested {
            request.extensions_mut().insert(layer.shutdown.clone());
        }
        let inject = layer
            .script_tag
            .as_ref()
            .filter(|_| layer.predicate.request(&request))
            .map(|tag| (tag.clone(), layer.predicate.clone()));
        let head = request.method() == Method::HEAD;
        ResponseFuture {
            kind: Kind::App {
                inner: self.inner.call(request),
                layer: Some(AppLayer {
                    shutdown: layer.shutdown.clone(),
                    retry: layer.retry.clone(),
                    inject,
                    head,
                    handled,
                }),
            },
        }
    }
}

pin_project! {
    /// The response future of [`InjectService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, P> {
        #[pin]
        kind: Kind<F, P>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, P> {
        // A reload path, answered by the layer.
        Reload { #[pin] answer: RouteFuture<Infallible>, handled: Option<Handled> },
        // The app's answer, rewritten as `layer` says (taken once it is ready).
        App { #[pin] inner: F, layer: Option<AppLayer<P>> },
    }
}

impl<F, P> std::fmt::Debug for ResponseFuture<F, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// What the layer does to the app's answer to one request.
#[derive(Debug)]
struct AppLayer<P> {
    shutdown: ShutdownSignal,
    // The `retry` field for the app's event streams, when reload is on.
    retry: Option<Bytes>,
    // The tag and the predicate, or `None` when reload is off or the request
    // rules injection out.
    inject: Option<(Bytes, P)>,
    // A HEAD request: the headers change as for GET, the (empty) body does not.
    head: bool,
    // The mark for an outer layer, when this one is nested.
    handled: Option<Handled>,
}

impl<F, P, ResBody, E> Future for ResponseFuture<F, P>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    P: Predicate,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<InjectBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Reload { answer, handled } => {
                let Ok(response) = ready!(answer.poll(cx));
                let mut response = response.map(InjectBody::reload_path);
                if let Some(handled) = handled.take() {
                    response.extensions_mut().insert(handled);
                }
                Poll::Ready(Ok(response))
            }
            KindProj::App { inner, layer } => {
                let response = ready!(inner.poll(cx))?;
                let layer = layer
                    .take()
                    .expect("ResponseFuture polled after it completed");
                Poll::Ready(Ok(rewrite(response, layer)))
            }
        }
    }
}

/// The app's `response`, rewritten as `layer` says.
fn rewrite<B, P>(mut response: Response<B>, layer: AppLayer<P>) -> Response<InjectBody<B>>
where
    B: http_body::Body<Data = Bytes>,
    P: Predicate,
{
    if let Some(inner) = response.extensions().get::<Handled>() {
        // An inner layer did its work. Its shutdown signal may be another
        // handle's than the server's: then the stream ends on this one's too, with
        // no second `retry`.
        if !inner.shutdown.is_same(&layer.shutdown) && ends_at_shutdown(&response) {
            let shutdown = &layer.shutdown;
            return response.map(|body| InjectBody::until_shutdown(body, shutdown, None));
        }
        return response.map(InjectBody::passthrough);
    }
    if let Some(handled) = layer.handled {
        response.extensions_mut().insert(handled);
    }
    if ends_at_shutdown(&response) {
        let retry = layer.retry;
        let shutdown = &layer.shutdown;
        return response.map(|body| InjectBody::until_shutdown(body, shutdown, retry));
    }
    let tag = layer.inject.and_then(|(tag, predicate)| {
        (can_inject(&response) && predicate.response(&response)).then_some(tag)
    });
    let Some(tag) = tag else {
        return response.map(InjectBody::passthrough);
    };
    let headers = response.headers_mut();
    grow_content_length(headers, tag.len());
    // The body now names this process: a validator of the file it came from
    // would let the browser reuse a page that names an older one (a 304 after
    // each reload, and a reload loop).
    headers.remove(header::ETAG);
    headers.remove(header::LAST_MODIFIED);
    if layer.head {
        return response.map(InjectBody::passthrough);
    }
    response.map(|body| InjectBody::injecting(body, Splicer::new(tag)))
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
