//! Throughput of the script injector: 1 MiB of HTML in 4 KiB chunks through the
//! public [`axum_autoreload::inject::InjectLayer`] around a `tower::service_fn` that
//! returns a streamed body, the body collected.
//!
//! `cargo bench --bench inject` (criterion). Three variants: `layer` (reload on: the
//! body is scanned for `</body` and the script spliced in), `layer_off` (reload off:
//! the layer passes the body through) and `no_layer` (the service alone), so the
//! cost of the rewriter shows against what collecting the body costs anyway.

#[path = "harness/page.rs"]
mod page;

use std::convert::Infallible;
use std::time::Duration;

use axum_autoreload::AutoReload;
use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures_util::stream;
use http::{header, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tower::{Layer, Service, ServiceExt};

/// The body's size and its chunks'.
const SIZE: usize = 1024 * 1024;
const CHUNK: usize = 4 * 1024;

/// Sends one request through `service`, collects the body and returns its length.
async fn run<S, B>(service: &S) -> usize
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(Request::new(())).await;
    let body = response.unwrap_or_else(|never| match never {}).into_body();
    let body = body.collect().await.expect("a body without error");
    body.to_bytes().len()
}

// What `criterion_group!` and `criterion_main!` would write, less an undocumented
// public function.
fn main() {
    let page = Bytes::from(page::html_page(SIZE));
    assert_eq!(page.len(), SIZE);
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let runtime = runtime.expect("a Tokio runtime");
    // The page as a body of `CHUNK`-byte frames (slices of one buffer: no copy).
    let app = tower::service_fn(move |_request: Request<()>| {
        let frames = (0..SIZE).step_by(CHUNK).map(|at| {
            let chunk = page.slice(at..(at + CHUNK).min(SIZE));
            Ok::<_, Infallible>(Frame::data(chunk))
        });
        let body = StreamBody::new(stream::iter(frames.collect::<Vec<_>>()));
        let html = "text/html; charset=utf-8";
        let response = Response::builder().header(header::CONTENT_TYPE, html);
        std::future::ready(Ok::<_, Infallible>(response.body(body).expect("a body")))
    });
    let on = AutoReload::builder().enabled(true).build();
    let off = AutoReload::builder().enabled(false).build();
    let (with_layer, without) = (
        on.layer().layer(app.clone()),
        off.layer().layer(app.clone()),
    );

    // The layer must really inject: the page grows by the tag.
    let grown = runtime.block_on(run(&with_layer));
    assert_eq!(grown, SIZE + on.script_tag().len());
    assert_eq!(runtime.block_on(run(&without)), SIZE);

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("inject");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("layer", |b| b.iter(|| runtime.block_on(run(&with_layer))));
    group.bench_function("layer_off", |b| b.iter(|| runtime.block_on(run(&without))));
    group.bench_function("no_layer", |b| b.iter(|| runtime.block_on(run(&app))));
    group.finish();
    criterion.final_summary();
}
