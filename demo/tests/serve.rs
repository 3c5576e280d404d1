//! The server and the layers in this process: the app's event streams end at
//! shutdown under any server, upgraded connections are waited for, the drain
//! deadline names what held it, a panicking handler is logged, and the reload
//! routes carry the Host and Origin checks under `axum::serve` too.

mod common;

use std::convert::Infallible;
use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use axum_autoreload::{AutoReload, KeepStreamOpen, ShutdownSignal};
use common::{request, EventStream};
use futures_util::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite;

/// What the server logs, for the tests that read it.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

impl Logs {
    /// Collect this thread's logs (the tests run on one thread, tasks included)
    /// until the guard is dropped.
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

/// An event stream that sends one event, then nothing, forever.
fn endless() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first = futures_util::stream::once(async { Ok(Event::default().event("tick").data("1")) });
    Sse::new(first.chain(futures_util::stream::pending()))
}

/// The app: a page, an endless event stream with no shutdown wiring, one that
/// opted out, and the reload routes and layer.
fn app(reload: &AutoReload) -> Router {
    Router::new()
        .route("/", get(|| async { Html("<h1>hi</h1>") }))
        .route("/events", get(|| async { endless() }))
        .route("/tail", get(|| async { (KeepStreamOpen, endless()) }))
        .merge(reload.router())
        .layer(reload.layer())
}

/// A listener on a free loopback port.
async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

/// `app` served by this crate's `serve`, without signal handling.
async fn serve(
    app: Router,
    reload: &AutoReload,
    drain: Duration,
) -> (SocketAddr, JoinHandle<io::Result<()>>) {
    let (listener, addr) = listen().await;
    let server = axum_autoreload::serve(listener, app, reload.clone())
        .handle_signals(false)
        .drain_deadline(drain)
        .into_future();
    (addr, tokio::spawn(server))
}

/// Trigger the shutdown and wait for the server to return; how long it took.
async fn shut_down(reload: &AutoReload, server: JoinHandle<io::Result<()>>) -> Duration {
    let started = Instant::now();
    reload.shutdown_signal().trigger();
    returns_within(Duration::from_secs(10), server).await;
    started.elapsed()
}

/// Wait for the server to return without an error, at most `limit`.
async fn returns_within(limit: Duration, server: JoinHandle<io::Result<()>>) {
    tokio::time::timeout(limit, server)
        .await
        .unwrap_or_else(|_| panic!("the server did not return within {limit:?}"))
        .expect("no panic")
        .expect("no error");
}

async fn first_event(stream: &mut EventStream) -> String {
    let (name, _) = stream.next_event().await.expect("read").expect("an event");
    name
}

#[tokio::test]
async fn the_apps_event_streams_end_when_the_shutdown_begins() {
    let reload = AutoReload::builder().enabled(true).build();
    let (addr, server) = serve(app(&reload), &reload, Duration::from_secs(5)).await;
    let mut events = EventStream::open_path(addr, "/events").await.expect("open");
    assert_eq!(first_event(&mut events).await, "tick");
    let mut reload_stream = EventStream::open(addr).await.expect("open");
    assert_eq!(first_event(&mut reload_stream).await, "hello");

    let took = shut_down(&reload, server).await;
    assert!(
        took < Duration::from_secs(1),
        "the stream held the shutdown: {took:?}"
    );
    assert!(
        events.ends_within(Duration::from_secs(1)).await,
        "the app's stream ends"
    );
    assert_eq!(
        first_event(&mut reload_stream).await,
        "restart",
        "the reload stream is not cut before its restart"
    );
}

#[tokio::test]
async fn under_axum_serve_too() {
    let reload = AutoReload::builder().enabled(true).build();
    let (listener, addr) = listen().await;
    let server = tokio::spawn(
        axum::serve(listener, app(&reload))
            .with_graceful_shutdown(reload.shutdown_signal().triggered_owned())
            .into_future(),
    );
    let mut events = EventStream::open_path(addr, "/events").await.expect("open");
    assert_eq!(first_event(&mut events).await, "tick");
    let started = Instant::now();
    reload.shutdown_signal().trigger();
    assert!(
        events.ends_within(Duration::from_secs(1)).await,
        "the app's stream ends"
    );
    // At once: no stream holds it.
    returns_within(Duration::from_secs(1), server).await;
    eprintln!(
        "axum::serve returned {} ms after the trigger",
        started.elapsed().as_millis()
    );
}

#[tokio::test]
async fn a_stream_kept_open_holds_the_drain_and_the_warning_names_it() {
    let (logs, _guard) = Logs::capture();
    let reload = AutoReload::builder().enabled(true).build();
    let (addr, server) = serve(app(&reload), &reload, Duration::from_millis(300)).await;
    let mut tail = EventStream::open_path(addr, "/tail").await.expect("open");
    assert_eq!(first_event(&mut tail).await, "tick");

    let took = shut_down(&reload, server).await;
    assert!(
        took >= Duration::from_millis(300),
        "the drain waited: {took:?}"
    );
    let logs = logs.text();
    assert!(
        logs.contains("drain deadline of 300 ms passed") && logs.contains("held by: GET /tail"),
        "{logs}"
    );
}

#[tokio::test]
async fn an_upgraded_connection_is_waited_for_until_the_app_closes_it() {
    let reload = AutoReload::builder().enabled(true).build();
    let ws = get(
        |upgrade: WebSocketUpgrade, shutdown: ShutdownSignal| async move {
            upgrade.on_upgrade(|mut socket| async move {
                shutdown.triggered().await;
                // Some work before the goodbye: the server waits for it.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let close = CloseFrame {
                    code: 1012,
                    reason: "restart".into(),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
            })
        },
    );
    let app = Router::new().route("/ws", ws).layer(reload.layer());
    let (addr, server) = serve(app, &reload, Duration::from_secs(5)).await;
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("connect");

    let took = shut_down(&reload, server).await;
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "the server waited for the socket, and no longer: {took:?}"
    );
    let message = tokio::time::timeout(Duration::from_secs(1), client.next())
        .await
        .expect("a message");
    let Some(Ok(tungstenite::Message::Close(Some(frame)))) = message else {
        panic!("expected the app's Close, got {message:?}");
    };
    assert_eq!(u16::from(frame.code), 1012);
}

#[tokio::test]
async fn an_upgraded_connection_left_open_is_named_at_the_deadline() {
    let (logs, _guard) = Logs::capture();
    let reload = AutoReload::builder().enabled(true).build();
    let ws = get(|upgrade: WebSocketUpgrade| async move {
        upgrade.on_upgrade(|socket| async move {
            std::future::pending::<()>().await;
            drop(socket);
        })
    });
    let app = Router::new().route("/ws", ws);
    let (addr, server) = serve(app, &reload, Duration::from_millis(300)).await;
    let _client = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("connect");

    let took = shut_down(&reload, server).await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let logs = logs.text();
    assert!(logs.contains("held by: GET /ws (upgraded)"), "{logs}");
}

#[tokio::test]
async fn panics_become_a_500_page_or_are_logged_and_the_server_goes_on() {
    let (logs, _guard) = Logs::capture();
    let reload = AutoReload::builder().enabled(true).build();
    let app = app(&reload)
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("boom in the handler");
                }
                "unreachable"
            }),
        )
        .route(
            "/panic-in-body",
            get(|| async {
                let chunks = futures_util::stream::once(async {
                    if true {
                        panic!("boom in the body");
                    }
                    Ok::<_, Infallible>(bytes::Bytes::new())
                });
                axum::body::Body::from_stream(chunks)
            }),
        );
    let (addr, server) = serve(app, &reload, Duration::from_secs(1)).await;
    // In the handler: serve applies catch_panic, the page says what panicked.
    let page = common::get(addr, "/panic").await.expect("GET /panic");
    assert_eq!(page.status, 500);
    assert!(
        page.text().contains("boom in the handler"),
        "{}",
        page.text()
    );
    // In the body, past catch_panic: the connection ends, the panic is logged.
    let raw = "GET /panic-in-body HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let _ = request(addr, raw).await;
    let page = common::get(addr, "/").await.expect("GET /");
    assert_eq!(page.status, 200, "still serving");
    shut_down(&reload, server).await;
    let logs = logs.text();
    assert!(
        logs.contains("ended in a panic: boom in the body"),
        "{logs}"
    );
}

#[tokio::test]
async fn with_graceful_shutdown_begins_the_shutdown() {
    let reload = AutoReload::builder().enabled(true).build();
    let (listener, addr) = listen().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum_autoreload::serve(listener, app(&reload), reload.clone())
            .handle_signals(false)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let mut stream = EventStream::open(addr).await.expect("open");
    assert_eq!(first_event(&mut stream).await, "hello");
    stop.send(()).expect("the server listens");
    assert_eq!(first_event(&mut stream).await, "restart");
    assert!(reload.shutdown_signal().is_triggered());
    returns_within(Duration::from_secs(2), server).await;
}

#[tokio::test]
async fn the_reload_routes_carry_the_guard_under_axum_serve() {
    let reload = AutoReload::builder().enabled(true).build();
    let start = |app: Router| async move {
        let (listener, addr) = listen().await;
        tokio::spawn(axum::serve(listener, app).into_future());
        addr
    };
    let send = |addr: SocketAddr, head: &str| {
        let raw = format!("{head}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        async move { request(addr, &raw).await.expect("an answer").status }
    };
    let addr = start(app(&reload)).await;
    let foreign = "Host: localhost\r\nOrigin: https://evil.example";
    assert_eq!(
        send(
            addr,
            &format!("POST /auto_refresh/reload HTTP/1.1\r\n{foreign}")
        )
        .await,
        403
    );
    assert_eq!(
        send(addr, &format!("GET /auto_refresh HTTP/1.1\r\n{foreign}")).await,
        403
    );
    assert_eq!(
        send(
            addr,
            "GET /auto_refresh/status HTTP/1.1\r\nHost: evil.example"
        )
        .await,
        403
    );
    assert_eq!(
        send(
            addr,
            "POST /auto_refresh/reload HTTP/1.1\r\nHost: localhost"
        )
        .await,
        200
    );
    // The app's own routes are the app's to guard...
    assert_eq!(
        send(addr, "GET / HTTP/1.1\r\nHost: evil.example").await,
        200
    );
    // ... with the same layer.
    let addr = start(app(&reload).layer(reload.guard())).await;
    assert_eq!(
        send(addr, "GET / HTTP/1.1\r\nHost: evil.example").await,
        403
    );
    assert_eq!(send(addr, "GET / HTTP/1.1\r\nHost: localhost").await, 200);
}

#[tokio::test]
async fn handlers_take_the_shutdown_signal_as_an_extractor() {
    use tower::ServiceExt;

    let reload = AutoReload::builder().enabled(true).build();
    let handler = get(|shutdown: ShutdownSignal| async move {
        format!("triggered: {}", shutdown.is_triggered())
    });
    let call = |app: Router| async move {
        let request = axum::http::Request::get("/")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = app
            .oneshot(request)
            .await
            .expect("infallible")
            .into_response();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let with_layer = Router::new()
        .route("/", handler.clone())
        .layer(reload.layer());
    assert_eq!(
        call(with_layer.clone()).await,
        (200, "triggered: false".to_owned())
    );
    reload.shutdown_signal().trigger();
    assert_eq!(call(with_layer).await, (200, "triggered: true".to_owned()));
    let (status, text) = call(Router::new().route("/", handler)).await;
    assert_eq!(status, 500);
    assert!(text.contains("AutoReload::layer()"), "{text}");
}
