//! The demo's WebSocket echo at `/ws`, with tokio-tungstenite as the client: text
//! and binary round trips, Ping and Close answered, 1009 for a message over
//! 64 KiB, 1012 for every socket when the server shuts down.

#[path = "../../tests/demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::Signal;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const LIMIT: usize = 64 * 1024;
const WAIT: Duration = Duration::from_secs(5);

async fn connect(addr: SocketAddr) -> Socket {
    let connected = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    let (ws, response) = connected.unwrap_or_else(|err| panic!("connecting to {addr}: {err}"));
    assert_eq!(response.status(), 101);
    ws
}

/// The next message; `None` when the connection ended.
async fn next(ws: &mut Socket) -> Option<Message> {
    match tokio::time::timeout(WAIT, ws.next()).await {
        Ok(Some(Ok(message))) => Some(message),
        Ok(Some(Err(err))) => panic!("reading the socket: {err}"),
        Ok(None) => None,
        Err(_) => panic!("nothing from the socket within {WAIT:?}"),
    }
}

/// Sends `message` and asserts that `answer` comes back.
async fn answered(ws: &mut Socket, message: Message, answer: Message) {
    ws.send(message).await.expect("send");
    assert_eq!(next(ws).await, Some(answer));
}

async fn echoed(ws: &mut Socket, message: Message) {
    answered(ws, message.clone(), message).await;
}

/// Reads until a Close frame and returns its code, then reads on (which sends
/// tungstenite's reply) until the server ends the connection.
async fn close_code(ws: &mut Socket) -> u16 {
    let code = loop {
        match next(ws).await {
            Some(Message::Close(Some(frame))) => break u16::from(frame.code),
            Some(Message::Close(None)) => panic!("a Close without a code"),
            Some(_) => {}
            None => panic!("the connection ended without a Close frame"),
        }
    };
    let end = next(ws).await;
    assert_eq!(end, None, "the connection should end after the Close");
    code
}

#[tokio::test]
async fn text_and_binary_come_back_unchanged_and_ping_and_close_are_answered() {
    let (addr, _server) = demo::serving(&[]).await;
    let mut ws = connect(addr).await;
    for text in ["hello", "", "ünïcödé ✓ <script>", &"x".repeat(LIMIT)] {
        echoed(&mut ws, Message::text(text)).await;
    }
    let bytes: Vec<u8> = (0..=255).cycle().take(LIMIT).collect();
    for payload in [vec![0, 159, 146, 150, 255], Vec::new(), bytes] {
        echoed(&mut ws, Message::binary(payload)).await;
    }
    let ping = bytes::Bytes::from_static(b"are you there");
    answered(&mut ws, Message::Ping(ping.clone()), Message::Pong(ping)).await;
    // Still echoing after the ping.
    echoed(&mut ws, Message::text("after ping")).await;

    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.close(Some(bye)).await.expect("send a close");
    assert_eq!(close_code(&mut ws).await, 1000, "the Close is answered");
}

#[tokio::test]
async fn a_message_over_64_kib_closes_the_socket_with_1009() {
    let (addr, _server) = demo::serving(&[]).await;
    for message in [
        Message::text("x".repeat(LIMIT + 1)),
        Message::binary(vec![7; LIMIT + 1]),
    ] {
        let mut ws = connect(addr).await;
        ws.send(message).await.expect("send");
        assert_eq!(close_code(&mut ws).await, 1009);
    }

    // Far over the limit (over the 1 MiB that tungstenite reads at most): the
    // server stops reading and sends 1009, but the rest of the message is left
    // unread, so the kernel may reset the connection before the client reads the
    // Close. Either way the socket ends and the server goes on.
    let mut ws = connect(addr).await;
    let sent = ws.send(Message::binary(vec![7; 4 * 1024 * 1024])).await;
    if sent.is_ok() {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => assert_eq!(u16::from(frame.code), 1009),
            Ok(Some(Err(_)) | None) => {}
            other => panic!("expected a 1009 close or a reset, got {other:?}"),
        }
    }
    // Others are unaffected.
    echoed(&mut connect(addr).await, Message::text("still here")).await;
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1012() {
    let (addr, mut server) = demo::serving(&[]).await;
    let mut sockets = Vec::new();
    for i in 0..3 {
        let mut ws = connect(addr).await;
        echoed(&mut ws, Message::text(format!("socket {i}"))).await;
        sockets.push(ws);
    }

    let signalled = Instant::now();
    server.signal(Signal::SIGINT);
    for ws in &mut sockets {
        assert_eq!(close_code(ws).await, 1012, "service restart");
    }
    let why = "once the sockets are closed";
    demo::assert_exits_cleanly(&mut server, Duration::from_secs(2), why);
    let ms = signalled.elapsed().as_millis();
    eprintln!("3 WebSockets closed with 1012 and the process exited {ms} ms after SIGINT");
}
