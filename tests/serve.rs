//! The server and the layers in this process: the app's event streams end at
//! shutdown under any server, upgraded connections are closed after the upgrade
//! grace (with 1012 between frames, without a Close frame mid-frame or for other
//! protocols) unless kept open, the drain deadline names what held it, a panic in
//! a body is logged, and the reload routes carry the Host and Origin checks under
//! `axum::serve` too.

use std::convert::Infallible;
use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::response::sse::{Event, Sse};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use axum_autoreload::{AutoReload, KeepStreamOpen, ShutdownSignal};
use dev_support::http;
use dev_support::sse::EventStream;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite;

#[path = "demo/support.rs"]
mod demo;

const EVENT: Duration = Duration::from_secs(5);

/// Collects what this thread logs (the tests run on one thread, tasks included)
/// in a file, until the guard is dropped.
fn capture_logs() -> (tempfile::NamedTempFile, tracing::subscriber::DefaultGuard) {
    let file = tempfile::NamedTempFile::new().expect("a log file");
    let writer = std::sync::Mutex::new(file.reopen().expect("the log file"));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false);
    (file, tracing::subscriber::set_default(subscriber.finish()))
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
        .layer(reload.layer())
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

/// A server running in a task of this process.
type Server = JoinHandle<io::Result<()>>;

/// `app` served by this crate's `serve`, without signal handling.
async fn serve(app: Router, reload: &AutoReload, drain: Duration) -> (SocketAddr, Server) {
    let (listener, addr) = listen().await;
    let server = reload
        .serve(listener, app)
        .handle_signals(false)
        .drain_deadline(drain);
    (addr, tokio::spawn(server.into_future()))
}

/// Triggers the shutdown and waits for the server to return; how long it took.
async fn shut_down(reload: &AutoReload, server: Server) -> Duration {
    let started = Instant::now();
    reload.shutdown_signal().trigger();
    returns_within(Duration::from_secs(10), server).await;
    started.elapsed()
}

/// Waits for the server to return without an error, at most `limit`.
async fn returns_within(limit: Duration, server: Server) {
    let returned = tokio::time::timeout(limit, server).await;
    let returned = returned.unwrap_or_else(|_| panic!("no return within {limit:?}"));
    returned.expect("no panic").expect("no error");
}

/// Under this crate's `serve` and under `axum::serve` with the shutdown signal.
#[tokio::test]
async fn the_apps_event_streams_end_when_the_shutdown_begins() {
    for ours in [true, false] {
        let reload = AutoReload::builder().enabled(true).build();
        let (addr, server) = if ours {
            serve(app(&reload), &reload, Duration::from_secs(5)).await
        } else {
            let (listener, addr) = listen().await;
            let server = axum::serve(listener, app(&reload))
                .with_graceful_shutdown(reload.shutdown_signal().triggered_owned());
            (addr, tokio::spawn(server.into_future()))
        };
        let mut events = EventStream::opened(addr, "/events", "tick").await.0;
        let mut reload_stream = EventStream::greeted(addr).await;
        let took = shut_down(&reload, server).await;
        // At once: no stream holds it.
        assert!(took < Duration::from_secs(1), "ours: {ours}, {took:?}");
        let ended = events.ends_within(Duration::from_secs(1)).await;
        assert!(ended, "the app's stream ends");
        if ours {
            // The reload stream is not cut before its restart.
            assert_eq!(reload_stream.event(EVENT).await.0, "restart");
        }
    }
}

/// A stream that opted out, and an upgraded connection the app never closes and
/// keeps open.
#[tokio::test]
async fn what_holds_the_drain_past_its_deadline_is_named() {
    let (logs, _guard) = capture_logs();
    let reload = AutoReload::builder().enabled(true).build();
    let ws = get(|upgrade: WebSocketUpgrade| async move {
        let socket = upgrade.on_upgrade(|socket| async move {
            std::future::pending::<()>().await;
            drop(socket);
        });
        (KeepStreamOpen, socket)
    });
    let app = app(&reload).route("/ws", ws);
    let (addr, server) = serve(app, &reload, Duration::from_millis(300)).await;
    let _tail = EventStream::opened(addr, "/tail", "tick").await;
    let client = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    let _client = client.expect("connect");

    let took = shut_down(&reload, server).await;
    let waited = took >= Duration::from_millis(300);
    assert!(waited, "the drain waited: {took:?}");
    let logs = std::fs::read_to_string(logs.path()).expect("the logs");
    let deadline = "drain deadline of 300 ms passed";
    demo::assert_contains(
        &logs,
        &[deadline, "held by: GET /tail", "GET /ws (upgraded)"],
    );
}

/// Within the upgrade grace, or past it when the app answered with
/// `KeepStreamOpen`, the server waits for the app to close the socket.
#[tokio::test]
async fn an_upgraded_connection_is_waited_for_until_the_app_closes_it() {
    for keep_open in [true, false] {
        let reload = AutoReload::builder().enabled(true).build();
        let ws = move |upgrade: WebSocketUpgrade, shutdown: ShutdownSignal| async move {
            let socket = upgrade.on_upgrade(|mut socket| async move {
                shutdown.triggered().await;
                // Some work before the goodbye, longer than the default grace.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let close = CloseFrame {
                    code: 1001,
                    reason: "going away".into(),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
            });
            (keep_open.then_some(KeepStreamOpen), socket)
        };
        let app = Router::new().route("/ws", get(ws)).layer(reload.layer());
        let (listener, addr) = listen().await;
        let mut server = reload
            .serve(listener, app)
            .handle_signals(false)
            .drain_deadline(Duration::from_secs(5));
        if !keep_open {
            server = server.upgrade_grace(Duration::from_secs(1));
        }
        let server = tokio::spawn(server.into_future());
        let client = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
        let (mut client, _) = client.expect("connect");

        let took = shut_down(&reload, server).await;
        let waited = took >= Duration::from_millis(200) && took < Duration::from_secs(1);
        assert!(
            waited,
            "kept open: {keep_open}: waited for the socket, no longer: {took:?}"
        );
        let message = tokio::time::timeout(Duration::from_secs(1), client.next()).await;
        let message = message.expect("a message");
        let Some(Ok(tungstenite::Message::Close(Some(frame)))) = message else {
            panic!("expected the app's Close, got {message:?}");
        };
        assert_eq!(u16::from(frame.code), 1001, "the app's Close");
    }
}

/// A WebSocket that the app holds and never ends: 1012 from the server after the
/// grace, and the app's read ends and its write fails.
#[tokio::test]
async fn a_websocket_the_app_holds_is_closed_with_1012_after_the_grace() {
    let reload = AutoReload::builder().enabled(true).build();
    let (ended, app_saw) = tokio::sync::oneshot::channel();
    let ended = std::sync::Arc::new(std::sync::Mutex::new(Some(ended)));
    let ws = get(move |upgrade: WebSocketUpgrade| {
        let ended = ended.lock().expect("not poisoned").take();
        async move {
            upgrade.on_upgrade(|mut socket| async move {
                while let Some(Ok(_)) = socket.recv().await {}
                let sent = socket.send(Message::text("after the close")).await;
                let _ = ended.expect("one socket").send(sent.is_err());
            })
        }
    });
    let (addr, server) = serve(
        app(&reload).route("/ws", ws),
        &reload,
        Duration::from_secs(5),
    )
    .await;
    let client = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    let (mut client, _) = client.expect("connect");

    let took = shut_down(&reload, server).await;
    let in_grace = took >= Duration::from_millis(80) && took < Duration::from_secs(1);
    assert!(in_grace, "closed after the 80 ms grace: {took:?}");
    let message = tokio::time::timeout(Duration::from_secs(1), client.next()).await;
    let message = message.expect("a message");
    let Some(Ok(tungstenite::Message::Close(Some(frame)))) = message else {
        panic!("expected the server's Close, got {message:?}");
    };
    assert_eq!(u16::from(frame.code), 1012, "service restart");
    let end = tokio::time::timeout(Duration::from_secs(1), client.next()).await;
    assert!(matches!(end, Ok(None)), "then the end: {end:?}");
    let write_failed = tokio::time::timeout(Duration::from_secs(1), app_saw).await;
    let write_failed = write_failed
        .expect("the app's read ends")
        .expect("a report");
    assert!(write_failed, "the app's write after the close fails");
}

/// The app is in the middle of a frame that the client does not read: the
/// connection ends inside that frame, with no Close frame cut into it.
#[tokio::test]
async fn a_websocket_caught_mid_frame_is_closed_without_a_close_frame() {
    const LEN: usize = 32 << 20;
    let reload = AutoReload::builder().enabled(true).build();
    let ws = get(|upgrade: WebSocketUpgrade| async move {
        upgrade.on_upgrade(|mut socket| async move {
            let _ = socket.send(Message::binary(vec![7; LEN])).await;
            std::future::pending::<()>().await;
        })
    });
    let (addr, server) = serve(
        app(&reload).route("/ws", ws),
        &reload,
        Duration::from_secs(5),
    )
    .await;
    let mut stream = upgraded(addr, "/ws", "websocket").await;
    // The frame's head: binary, 127 and a 64-bit length.
    let mut head = [0; 10];
    stream
        .read_exact(&mut head)
        .await
        .expect("the frame's head");
    assert_eq!(head[..2], [0x82, 127]);
    assert_eq!(
        u64::from_be_bytes(head[2..].try_into().expect("8 bytes")),
        LEN as u64
    );

    let took = shut_down(&reload, server).await;
    assert!(
        took < Duration::from_secs(1),
        "closed after the grace: {took:?}"
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    read.expect("the end within 5 s").expect("read to the end");
    assert!(
        rest.len() < LEN,
        "the frame is cut: {} of {LEN} bytes",
        rest.len()
    );
    assert!(
        rest.iter().all(|&byte| byte == 7),
        "only the frame's payload"
    );
}

/// An upgrade to another protocol than WebSocket: no frame is written into it.
#[tokio::test]
async fn an_upgrade_to_another_protocol_is_closed_without_a_frame() {
    let reload = AutoReload::builder().enabled(true).build();
    let raw = get(|mut request: axum::extract::Request| async move {
        let upgraded = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let _held = upgraded.await;
            std::future::pending::<()>().await;
        });
        let switching = axum::http::StatusCode::SWITCHING_PROTOCOLS;
        (switching, [("connection", "upgrade"), ("upgrade", "raw")])
    });
    let (addr, server) = serve(
        app(&reload).route("/raw", raw),
        &reload,
        Duration::from_secs(5),
    )
    .await;
    let mut stream = upgraded(addr, "/raw", "raw").await;

    let took = shut_down(&reload, server).await;
    assert!(
        took < Duration::from_secs(1),
        "closed after the grace: {took:?}"
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await;
    read.expect("the end within 1 s").expect("read to the end");
    assert_eq!(rest, b"", "nothing after the 101");
}

/// A raw connection upgraded to `protocol` at `path`: the `101` head read.
async fn upgraded(addr: SocketAddr, path: &str, protocol: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: {protocol}\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).await.expect("the 101 head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A panic in a handler is `panic.rs`'s: a 500 page through `serve`.
#[tokio::test]
async fn a_panic_in_a_body_is_logged_and_the_server_goes_on() {
    let (logs, _guard) = capture_logs();
    let reload = AutoReload::builder().enabled(true).build();
    let panics = get(|| async {
        type Chunk = Option<Result<bytes::Bytes, Infallible>>;
        let chunks =
            futures_util::stream::poll_fn(|_| -> Poll<Chunk> { panic!("boom in the body") });
        axum::body::Body::from_stream(chunks)
    });
    let app = app(&reload).route("/panic-in-body", panics);
    let (addr, server) = serve(app, &reload, Duration::from_secs(1)).await;
    // Past the panic page: the connection ends, the panic is logged.
    let _ = http::get(addr, "/panic-in-body").await;
    let page = http::get(addr, "/").await.expect("GET /");
    assert_eq!(page.status, 200, "still serving");
    shut_down(&reload, server).await;
    let logs = std::fs::read_to_string(logs.path()).expect("the logs");
    demo::assert_contains(&logs, &["ended in a panic: boom in the body"]);
}

#[tokio::test]
async fn with_graceful_shutdown_begins_the_shutdown() {
    let reload = AutoReload::builder().enabled(true).build();
    let (listener, addr) = listen().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = reload
        .serve(listener, app(&reload))
        .handle_signals(false)
        .with_graceful_shutdown(stopped.map(drop));
    let server = tokio::spawn(server.into_future());
    let mut stream = EventStream::greeted(addr).await;
    stop.send(()).expect("the server listens");
    assert_eq!(stream.event(EVENT).await.0, "restart");
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
    let plain = start(app(&reload)).await;
    let guarded = start(app(&reload).layer(reload.allowed_hosts())).await;
    let foreign = "Host: localhost\r\nOrigin: https://evil.example";
    for (addr, status, line, headers) in [
        (plain, 403, "POST /auto_refresh/reload", foreign),
        (plain, 403, "GET /auto_refresh", foreign),
        (plain, 403, "GET /auto_refresh/status", "Host: evil.example"),
        (plain, 200, "POST /auto_refresh/reload", "Host: localhost"),
        // The app's own routes are the app's to guard...
        (plain, 200, "GET /", "Host: evil.example"),
        // ... with the same layer.
        (guarded, 403, "GET /", "Host: evil.example"),
        (guarded, 200, "GET /", "Host: localhost"),
    ] {
        let response = http::send(addr, line, &format!("{headers}\r\n"), "").await;
        assert_eq!(response.status, status, "{line} {headers}");
    }
}
