//! The two-line integration and what it promises, on real sockets: `bind` plus
//! `serve` on a hello world, an app that has the layer already, an app with
//! routes of its own under `/auto_refresh`, `NormalizePath<Router>`, a closure as
//! the predicate, and a keep-alive of zero.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use axum_autoreload::{AutoReload, Serve};
use dev_support::http::get as http_get;
use dev_support::sse::EventStream;
use http::{header, HeaderMap, StatusCode};
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

const PAGE: &str = "<!DOCTYPE html><html><body><h1>Hello, World!</h1></body></html>";

async fn hello() -> Html<&'static str> {
    Html(PAGE)
}

/// Runs `serve` (without signal handling: tests share the process) in the
/// background.
fn spawn(serve: Serve) {
    tokio::spawn(serve.handle_signals(false).into_future());
}

/// How many times the client script's tag is in `page`.
fn tags(page: &str) -> usize {
    page.matches("/auto_refresh/client.js").count()
}

/// A fresh loopback listener, as the two lines make it.
async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = axum_autoreload::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

#[tokio::test]
async fn a_hello_world_with_two_lines_changed_injects_and_serves_the_stream() {
    let app = Router::new().route("/", get(hello));
    let (listener, addr) = bind().await;
    spawn(axum_autoreload::serve(listener, app));

    let page = http_get(addr, "/").await.expect("GET /");
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(tags(&page.text()), 1, "{}", page.text());
    let length = page.header("content-length").expect("a length");
    assert_eq!(length, page.body.len().to_string());

    let script = http_get(addr, "/auto_refresh/client.js")
        .await
        .expect("GET");
    assert_eq!(script.status, 200, "{script:?}");
    assert!(script.text().contains("EventSource"), "the client script");

    // The stream opens with hello; a foreign Origin is refused.
    let stream = EventStream::greeted(addr).await;
    assert!(stream.head.contains("text/event-stream"), "{}", stream.head);
    let foreign = dev_support::http::get_with(
        addr,
        "/auto_refresh",
        "Host: localhost\r\nOrigin: https://evil.example\r\n",
    )
    .await
    .expect("GET");
    assert_eq!(foreign.status, 403, "{foreign:?}");
}

#[tokio::test]
async fn an_app_with_the_layer_already_gets_the_script_once() {
    let reload = AutoReload::builder().enabled(true).build();
    let app = Router::new().route("/", get(hello)).layer(reload.layer());
    let (listener, addr) = bind().await;
    spawn(reload.serve(listener, app));

    let page = http_get(addr, "/").await.expect("GET /");
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(tags(&page.text()), 1, "{}", page.text());
    let length = page.header("content-length").expect("a length");
    assert_eq!(length, page.body.len().to_string(), "the length grew once");

    // A handle of its own, from another `AutoReload` inside: still once.
    let inner = AutoReload::builder().enabled(true).build();
    let app = Router::new().route("/", get(hello)).layer(inner.layer());
    let (listener, addr) = bind().await;
    spawn(axum_autoreload::serve(listener, app));
    let page = http_get(addr, "/").await.expect("GET /");
    assert_eq!(tags(&page.text()), 1, "{}", page.text());
}

#[tokio::test]
async fn routes_of_the_app_under_auto_refresh_do_not_clash() {
    let reload = AutoReload::builder().enabled(true).build();
    // Routes of its own at the reload paths, and the layer that answers them too:
    // building and serving must not panic, and the reload paths win.
    let app = Router::new()
        .route("/", get(hello))
        .route("/auto_refresh", get(|| async { "the app's own" }))
        .route("/auto_refresh/status", get(|| async { "the app's own" }))
        .layer(reload.layer());
    let (listener, addr) = bind().await;
    spawn(reload.serve(listener, app));

    let status = http_get(addr, "/auto_refresh/status").await.expect("GET");
    assert_eq!(status.status, 200, "{status:?}");
    let id = reload.instance_id().to_string();
    assert!(status.text().contains(&id), "{}", status.text());
    let stream = EventStream::greeted(addr).await;
    assert!(stream.head.contains("text/event-stream"), "{}", stream.head);
    let unknown = http_get(addr, "/auto_refresh/nothing").await.expect("GET");
    assert_eq!(unknown.status, 404, "{unknown:?}");
}

#[tokio::test]
async fn a_normalize_path_router_is_served() {
    let app =
        NormalizePathLayer::trim_trailing_slash().layer(Router::new().route("/hello", get(hello)));
    let (listener, addr) = bind().await;
    spawn(axum_autoreload::serve(listener, app));

    let page = http_get(addr, "/hello/").await.expect("GET /hello/");
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(tags(&page.text()), 1, "{}", page.text());
}

#[tokio::test]
async fn a_closure_picks_the_pages() {
    let reload = AutoReload::builder().enabled(true).build();
    let xhtml = |_status: StatusCode, headers: &HeaderMap| {
        headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/xhtml+xml"))
    };
    let app = Router::new()
        .route("/html", get(hello))
        .route(
            "/xhtml",
            get(|| async { ([(header::CONTENT_TYPE, "application/xhtml+xml")], PAGE) }),
        )
        .layer(reload.layer().inject_when(xhtml))
        .layer(reload.allowed_hosts());
    let (listener, addr) = bind().await;
    // axum's own server: the layer alone decides.
    let shutdown = reload.shutdown_signal();
    tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.triggered_owned())
            .into_future(),
    );

    let page = http_get(addr, "/xhtml").await.expect("GET /xhtml");
    assert_eq!(tags(&page.text()), 1, "{}", page.text());
    let page = http_get(addr, "/html").await.expect("GET /html");
    assert_eq!(tags(&page.text()), 0, "{}", page.text());
    // The layer answers its own paths under axum::serve too.
    let script = http_get(addr, "/auto_refresh/client.js")
        .await
        .expect("GET");
    assert_eq!(script.status, 200, "{script:?}");
    reload.shutdown_signal().trigger();
}

#[tokio::test]
async fn a_keep_alive_of_zero_sends_none_and_does_not_panic() {
    let reload = AutoReload::builder()
        .enabled(true)
        .keep_alive(Duration::ZERO)
        .build();
    let app = Router::new().route("/", get(|| async { "up".into_response() }));
    let (listener, addr) = bind().await;
    spawn(reload.serve(listener, app));

    let mut stream = EventStream::greeted(addr).await;
    assert_eq!(
        stream.next_within(Duration::from_millis(300)).await,
        None,
        "no keep-alive, no event"
    );
    assert_eq!(reload.open_streams(), 1, "the stream is still open");
    reload.reload();
    let (name, _) = stream.event(Duration::from_secs(5)).await;
    assert_eq!(name, "reload");
}

#[tokio::test]
async fn an_event_stream_of_an_app_with_the_layer_gets_one_retry() {
    let reload = AutoReload::builder().enabled(true).build();
    let app = events_app(&reload);
    let (listener, addr) = bind().await;
    spawn(reload.serve(listener, app));

    let (mut stream, data) = EventStream::opened(addr, "/events", "tick").await;
    assert_eq!(data, "1");
    assert!(stream.head.contains("text/event-stream"), "{}", stream.head);
    // The `retry: 250` goes once before the app's first byte, however many layers:
    // counted on the wire, where a parser would hide a second one.
    let raw = read_until(addr, "/events", "data: 1").await;
    assert_eq!(raw.matches("retry: 250").count(), 1, "{raw}");
    reload.shutdown_signal().trigger();
    assert!(stream.ends_within(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn an_app_with_a_handle_of_its_own_has_its_streams_ended_by_the_server() {
    let own = AutoReload::builder().enabled(true).build();
    let app = events_app(&own);
    let (listener, addr) = bind().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    spawn(
        axum_autoreload::serve(listener, app)
            .drain_deadline(Duration::from_secs(30))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            }),
    );

    let (mut stream, _) = EventStream::opened(addr, "/events", "tick").await;
    stop.send(()).expect("the server runs");
    assert!(
        stream.ends_within(Duration::from_secs(5)).await,
        "the server's shutdown ends the stream, not its drain deadline"
    );
}

/// An app whose event stream at `/events` sends `tick` once and stays open, behind
/// `reload`'s layer.
fn events_app(reload: &AutoReload) -> Router {
    use axum::response::sse::{Event, Sse};
    use futures_util::{stream, StreamExt};

    let events = || async {
        let tick = Event::default().event("tick").data("1");
        let events = stream::iter([Ok::<_, std::convert::Infallible>(tick)]);
        Sse::new(events.chain(stream::pending()))
    };
    Router::new()
        .route("/events", get(events))
        .layer(reload.layer())
}

/// `GET path` on a raw connection, read until `needle` has come; what came.
async fn read_until(addr: SocketAddr, path: &str, needle: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let read = async {
        while !String::from_utf8_lossy(&raw).contains(needle) {
            let mut buf = [0; 1024];
            let n = stream.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "the connection ended: {}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("in time");
    String::from_utf8_lossy(&raw).into_owned()
}
